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

The stall rule (only with a ``stall`` limit, the stall watchdog's setting). Each host says how long
its workers have been idle (``watchdog.HostProgress.idle``): the first host its own when it ticks,
every other host with each ping (once a second). The job has stalled when every host said so for
``stall`` seconds or more; a host that has not said it yet keeps the job alive. A host's word is
at most a ping's interval old, so the rule may decide that much late, never early.
"""

from typing import NamedTuple, Optional, Tuple

from .errors import EXIT_STALLED
from .outcome import JobResult
from .roles import STALL

SETTLE = 3.0  # seconds after a consequence happened that its cause may still be reported
RECHECK = 0.25  # seconds between looks while the stall rule waits for the hosts' word
STALLED = "no output from any worker for {:g} s"


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

    def __init__(self, hosts, settle=SETTLE, stall=None):
        self.hosts = frozenset(hosts)
        self.first = hosts[0] if hosts else ""
        self.settle = settle
        self.stall = stall  # seconds without progress on every host that end the job; None: no stall rule
        self.done = set()
        self.failure = None  # the failure verdict, once decided
        self.deadline = None  # when ``timed_out`` must be called (a consequence is held)
        self._failures = []  # (at, arrival, result)
        self._idle = {}  # host -> (seconds its workers had been idle, when it said so)

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
        """-> the failure ``Verdict`` once the held consequences' time is up, or once the job has
        stalled, else None."""
        if self.failure is not None:
            return None
        if self.deadline is not None and now >= self.deadline:
            return self._decide(min(self._failures)[2])
        if self.stalled:
            return self._decide(JobResult(STALL, self.first, EXIT_STALLED, (), STALLED.format(self.stall)))
        return None

    def idle(self, host, seconds, now):
        """``host`` said at ``now`` that its workers had been idle for ``seconds``."""
        if host in self.hosts:
            self._idle[host] = (seconds, now)

    @property
    def stalled(self):
        """Every host said its workers had been idle for ``stall`` seconds (and the job goes on)."""
        return (self.stall is not None and not self.finished and len(self._idle) == len(self.hosts)
                and all(seconds >= self.stall for seconds, _at in self._idle.values()))

    def stall_due(self, now):
        """When ``timed_out`` must be called for the stall rule (None: never): when every host
        will have been idle ``stall`` seconds if none shows progress meanwhile; while that time is
        past but some host has not said so yet, every ``RECHECK`` seconds."""
        if self.stall is None or self.finished:
            return None
        if len(self._idle) < len(self.hosts):
            return now + RECHECK
        due = max(at - seconds + self.stall for seconds, at in self._idle.values())
        return due if due > now else now + RECHECK

    def _decide(self, root):
        others = tuple(r for _when, _n, r in sorted(self._failures) if r is not root)
        self.failure = Verdict(root, others)
        self.deadline = None
        return self.failure
