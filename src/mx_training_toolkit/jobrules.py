"""The job's rules, kept by the first host: when every worker of the job is done, and which
failure is the job's root cause. Pure: the caller says what happened and when (on the first
host's clock), and reads the verdict; ``deadline`` says when it must call ``timed_out``.

The settle rule. A failure carries the time it happened (another host sends its age, which the
first host subtracts from its own clock on arrival: see ``relay``). An ordinary failure decides
at once: it is the root cause. A failure that is only a consequence of another one (a Horovod
rank that errored because another rank failed) may arrive before its cause, so it is held until
``SETTLE`` seconds after the earliest held consequence happened (one timer); if an ordinary
failure arrives meanwhile it is the root cause, else the earliest consequence is. Every other
failure known by then is listed with the verdict, ordered by time.
"""

from typing import NamedTuple, Optional, Tuple

from .outcome import JobResult

SETTLE = 3.0  # seconds after a consequence happened that its cause may still be reported


class Verdict(NamedTuple):
    """The job's end, as every host is told: ``root`` is None when every worker is done."""

    root: Optional[JobResult] = None
    others: Tuple[JobResult, ...] = ()  # the other failures known when it was decided, earliest first

    @property
    def failed(self):
        return self.root is not None


ALL_DONE = Verdict()


class JobRules:
    """Done-counting and the root cause for the hosts ``hosts`` (the first host's included)."""

    def __init__(self, hosts, settle=SETTLE):
        self.hosts = frozenset(hosts)
        self.settle = settle
        self.done = set()
        self.failure = None  # the failure verdict, once decided
        self.deadline = None  # when ``timed_out`` must be called (a consequence is held)
        self._failures = []  # (at, arrival, result)

    @property
    def all_done(self):
        return self.done >= self.hosts

    @property
    def finished(self):
        """Whether a host leaving now is no loss: the job failed, or every worker is done."""
        return self.failure is not None or self.all_done

    def worker_done(self, host):
        """Every worker of ``host`` finished -> ``ALL_DONE`` when that makes every host, else None."""
        if host not in self.hosts or self.all_done:
            return None
        self.done.add(host)
        return ALL_DONE if self.all_done else None

    def failed(self, result, at, now):
        """A failure that happened at ``at`` (``now``: the clock when it arrived) -> the failure
        ``Verdict`` when this decides the job, else None (held, or the job has ended already)."""
        if self.failure is not None:
            return None
        self._failures.append((min(at, now), len(self._failures), result))
        if not result.consequence:
            return self._decide(result)
        earliest = min(when for when, _n, r in self._failures if r.consequence)
        self.deadline = earliest + self.settle
        return self.timed_out(now)

    def timed_out(self, now):
        """-> the failure ``Verdict`` once the held consequences' time is up, else None."""
        if self.failure is not None or self.deadline is None or now < self.deadline:
            return None
        return self._decide(min(self._failures)[2])

    def _decide(self, root):
        others = tuple(r for _when, _n, r in sorted(self._failures) if r is not root)
        self.failure = Verdict(root, others)
        self.deadline = None
        return self.failure
