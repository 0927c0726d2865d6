"""The first host's relay: what the hosts report goes to the job's rules (``jobrules``), and the
rules' verdict goes to every host. No sockets here: ``send_all`` broadcasts (the hub's), ``post``
gives this host's run loop an event, ``clock`` is the first host's clock.

Times. Every failure carries when it happened: this host's own failures by this host's clock;
another host's as its age in seconds when it was sent (``messages.reported_age``), which becomes
``clock() - age`` on arrival here. Hosts are separate machines with clocks that need not agree;
an age does not depend on them. The time in transit (milliseconds between hosts) is counted as
part of the age's "after", so a failure from another host seems that much later than it was.

Who learns a verdict how: a verdict that another host's message (or a lost host) caused is
posted to this host's loop; one that this host's own call caused (``fail``, ``worker_done``,
``tick``) is returned to the caller as events, so that the run loop takes it in at once. When
another host's consequence sets the timer, a ``WAKE`` event makes the loop wait for it.

The stall watchdog (``stall`` seconds, ``idle`` this host's ``watchdog.HostProgress.idle``): every
other host's pings say how long its workers have been idle; this host's own is asked at each
``tick``; the rules (``jobrules``) decide, and their stall verdict goes to every host as an abort.
"""

import threading
import time

from .jobrules import SETTLE, JobRules
from .log import get_logger
from .messages import reported_age, reported_result, verdict_message
from .outcome import ALL_DONE, LAUNCHER, PEER_FAILED, Event, JobResult
from .roles import STALL

log = get_logger("mx_training_toolkit.channel")

LOST = "the connection to the launcher on {} was lost (the host stopped or died)"
MAX_IDLE = 1e9  # seconds of idleness a host may report (a number past any stall setting)
WAKE = "wake"  # an event that only makes this host's loop look at ``deadline`` again


def verdict_events(verdict):
    """A ``jobrules.Verdict`` -> the events this host's run loop decides on."""
    if verdict is None:
        return []
    if not verdict.failed:
        return [Event(ALL_DONE)]
    return [Event(PEER_FAILED, result=verdict.root, others=verdict.others)]


class Relay:
    """Between the hosts (``hosts``, ``host`` ours) and the job's rules."""

    def __init__(self, host, hosts, post, send_all=lambda message: None, clock=time.monotonic, settle=SETTLE,
                 stall=None, idle=None):
        self.host = host
        self.post = post
        self.send_all = send_all
        self.clock = clock
        self.abort = None  # the abort message once the job failed: told to hosts that join later
        self.idle = idle  # with ``stall``: how long this host's workers have been idle (``watchdog.HostProgress``)
        self._rules = JobRules(tuple(hosts), settle, stall if idle is not None else None)
        self._lock = threading.Lock()

    @property
    def deadline(self):
        """When ``tick`` must be called (a consequence failure is held, or the stall rule looks), or None."""
        with self._lock:
            due = [d for d in (self._rules.deadline, self._rules.stall_due(self.clock())) if d is not None]
        return min(due) if due else None

    # ---- from the other hosts (the hub's thread): verdicts are posted ---------------------------

    def joined(self, host):
        """``host`` joined -> the message to tell it at once (the job failed already), or None."""
        return self.abort

    def received(self, host, message):
        kind = message["t"]
        if kind == "worker-done":
            self._post(self._decide(self._rules.worker_done, host))
        elif kind == "failed":
            result = reported_result(message, "failed")
            if result.host != host:
                result = result._replace(host=host)
            now = self.clock()
            held = self._rules.deadline
            verdict = self._decide(self._rules.failed, result, now - reported_age(message), now)
            if verdict is None and self._rules.deadline != held:  # the loop's wait must end sooner now
                self.post(Event(WAKE))
            self._post(verdict)
        elif kind == "ping":
            seconds = message.get("idle")
            if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds >= 0:
                with self._lock:
                    self._rules.idle(host, min(float(seconds), MAX_IDLE), self.clock())
        else:
            log.warning("channel: ignoring a message of type %r from %s", kind[:40], host)

    def gone(self, host):
        """``host``'s connection ended: a failure, unless the job had ended anyway."""
        with self._lock:
            finished = self._rules.finished
        if not finished:
            self.failed(JobResult(LAUNCHER, host, 1, (), LOST.format(host)))

    def failed(self, result):
        """A failure the channel saw (a host that never joined, or is configured differently)."""
        now = self.clock()
        self._post(self._decide(self._rules.failed, result, now, now))

    # ---- from this host's run loop: verdicts are returned ---------------------------------------

    def worker_done(self):
        """This host's workers all finished -> events for its loop."""
        return verdict_events(self._decide(self._rules.worker_done, self.host))

    def fail(self, result, at=None):
        """A failure on this host that happened at ``at`` (default: now) -> events for its loop."""
        now = self.clock()
        return verdict_events(self._decide(self._rules.failed, result, now if at is None else at, now))

    def tick(self):
        """``deadline`` has passed -> events for this host's loop."""
        now = self.clock()
        if self.idle is not None:
            seconds = self.idle()
            with self._lock:
                self._rules.idle(self.host, seconds, now)
        return verdict_events(self._decide(self._rules.timed_out, now))

    def _decide(self, rule, *args):
        """Apply ``rule`` under the lock; tell every other host its verdict -> the verdict or None."""
        with self._lock:
            verdict = rule(*args)
            if verdict is None:
                return None
            message = verdict_message(verdict)
            if verdict.failed and verdict.root.role == STALL:
                log.error("no output from any worker of the job, on any host, for %g s: the job has stalled",
                          self._rules.stall)
            if verdict.failed:
                self.abort = message
                log.debug("channel: the job failed on %s (%d other failures)", verdict.root.host,
                          len(verdict.others))
            else:
                log.info("channel: every worker of the job is done")
        self.send_all(message)
        return verdict

    def _post(self, verdict):
        for event in verdict_events(verdict):
            self.post(event)
