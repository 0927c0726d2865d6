"""The job's decisions on one host: a state machine over events, and the loop that feeds it.

``JobPolicy`` knows nothing of processes: it takes events (a process exited, another host failed,
every worker of the job is done, a stop signal, time passed) and says what follows. ``run`` and
``run_helper`` drive it with an injected process starter (``Supervisor`` in production, a fake in
the tests) and an injected clock, so that every decision can be tested from a table of events.

What the loop never does itself: stop processes. Whatever the final state, the launcher stops
everything that is left with one deadline afterwards (``Supervisor.stop``), the way ``stop_plan``
says: after a stop signal the workers first, with the long grace; else everything, with the short one.
"""

import enum
import time
from typing import NamedTuple, Tuple

from .log import get_logger
from .outcome import ALL_DONE, EXIT, LAUNCHER, PEER_FAILED, SIGNAL, USER_FAILURE_NOTE, stopped_result
from .roles import PS_ROLES, SERVICE_ROLES, STALL, SUPPORT_ROLES, WORKER
from .signals import forwarded

log = get_logger(__name__)

EARLY_EXIT_GRACE = 10.0  # seconds a role may precede the workers in exiting 0 (they may be finishing too)
EARLY_NOTE = "it exited before the workers finished"


class JobState(enum.Enum):
    """Where this host's job stands.

    ``PREPARING``   nothing of the job runs yet (code, pip); a stop or another host's failure ends it.
    ``RUNNING``     the job's processes run and this host's workers (one, or its Horovod ranks)
                    have not all finished.
    ``WAITING``     this host's workers finished; workers on other hosts still run.
    ``WINDING_DOWN`` every worker of the job is done; parameter-server roles get ``linger``
                    seconds to exit by themselves (an unused scheduler or server never does);
                    service roles (Horovod's rendezvous server) are not waited for.
    ``SUCCEEDED``   every worker of the job is done and every role exited 0 or ran out of time.
    ``FAILED``      a process here failed (or a role exited 0 too early), or another host failed.
    ``STOPPED``     the launcher received a stop signal before the job finished, or another host's
                    launcher did (the platform stops every host; the first to hear it tells the others).

    Only these transitions happen: PREPARING -> RUNNING -> WAITING -> WINDING_DOWN -> SUCCEEDED,
    with WAITING and WINDING_DOWN skipped when there is nothing to wait for, and any state that
    is not final -> FAILED or STOPPED.
    """

    PREPARING = "preparing"
    RUNNING = "running"
    WAITING = "waiting"
    WINDING_DOWN = "winding-down"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def final(self):
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.STOPPED)


class Stop(NamedTuple):
    """How the launcher stops what is left of the job (``Supervisor.stop`` carries it out)."""

    signum: int  # the signal the processes get
    grace: float  # seconds from the first signal sent to SIGKILL, for everything
    first: Tuple[str, ...] = ()  # roles signalled first; the rest once these have exited (or at the grace)
    linger: float = 0.0  # then, seconds the ``lingering`` roles may take to exit by themselves before their signal
    lingering: Tuple[str, ...] = ()
    stacks_first: bool = False  # ask every process for its stacks before anything is signalled (a stalled job)


def stop_plan(state, signum, stop_grace, failure_grace, linger=0.0, stalled=False):
    """How to stop what is left once the job's loop reached ``state`` -> ``Stop``. ``signum`` is the
    stop signal that stopped the job (the launcher's own, or a stopped host's), else the launcher's
    first stop signal or 0.

    A stopped job is one the platform wants to end without losing work: the workers (the script,
    its Horovod ranks) get the signal first and ``stop_grace`` to finish a batch and checkpoint,
    while the scheduler, servers and rendezvous server they need keep running; once the workers
    have exited, the parameter-server roles get ``linger`` to exit by themselves (they do once every
    worker of the job has finalised), then the signal. A failed or finished job is only ended:
    everything gets the signal at once and ``failure_grace``; a job that ``stalled`` shows where
    each of its processes is first."""
    if state == JobState.STOPPED:
        return Stop(forwarded(signum), stop_grace, (WORKER,), linger, PS_ROLES)
    return Stop(forwarded(signum), failure_grace, stacks_first=stalled)


class JobPolicy:
    """This host's decisions. Feed it with ``started``, ``handle(event)`` and ``timed_out``;
    read ``state``, ``results`` (failures, the root cause first, then the others, earliest
    first), ``deadline`` (when it needs ``timed_out`` called) and what it queued in ``outbox``
    for the job's rules (``("worker-done", None, None)`` or ``("failed", JobResult, at)``).

    A failure here decides this host's job at once, unless it is only a consequence of another
    Horovod rank's failure: that one goes to the job's rules (on the first host, ``jobrules``),
    and this host waits for their verdict (a ``PEER_FAILED`` event), or for a failure of its own."""

    def __init__(self, host, multi_host=False, linger=3.0, clock=time.monotonic, early_grace=EARLY_EXIT_GRACE,
                 user_failed=lambda: False):
        self.host = host
        self.user_failed = user_failed  # whether the script wrote output/failure itself (asked once it is done)
        self.multi_host = multi_host
        self.linger = linger
        self.early_grace = early_grace
        self.clock = clock
        self.state = JobState.PREPARING
        self.results = []
        self.deadline = None
        self.signum = 0
        self.outbox = []
        self._roles = {}  # support role process handle (scheduler, server, rendezvous) -> its role
        self._status = {}  # the same handles -> the exit status (None while it runs)
        self._workers_left = 1  # this host's workers (Horovod ranks) that have not finished
        self._early = None  # a role that exited 0 before the workers were done
        self._all_done = not multi_host
        self._consequences = []  # failures here that only say another rank failed: the verdict decides

    def _become(self, state):
        log.debug("job: %s -> %s", self.state.value, state.value)
        self.state = state

    def started(self, roles, workers=1):
        """The job's processes were started: ``workers`` workers (Horovod ranks, else 1), and
        ``roles``, which maps the support roles' process handles (scheduler, server, rendezvous)
        to their role names."""
        self._roles = dict(roles)
        self._status = {h: None for h in roles}
        self._workers_left = workers
        self._become(JobState.RUNNING)

    def _roles_done(self):
        """Every support role has exited, or never exits by itself (it is stopped at the end)."""
        return all(status is not None or self._roles[h] in SERVICE_ROLES for h, status in self._status.items())

    def handle(self, event):
        """Take one event. Events that mean nothing in the current state are ignored."""
        if self.state.final:
            self._add_others(event)
            return
        if event.kind == SIGNAL:
            self._stop(event.signum)
        elif event.kind == PEER_FAILED:
            if event.result.role == LAUNCHER and event.result.signal:  # another host was stopped
                self.results.append(event.result)
                self.signum = event.result.signal
                self._become(JobState.STOPPED)
            else:
                self._fail(event.result, tell=False, others=event.others)
        elif event.kind == ALL_DONE:
            self._all_done = True
            if self.state == JobState.WAITING:
                self._wind_down()
        elif event.kind == EXIT and self.state != JobState.PREPARING:
            self._exited(event)

    def timed_out(self):
        """``deadline`` has passed."""
        if self.state.final or self.deadline is None or self.clock() < self.deadline:
            return
        if self.state == JobState.WINDING_DOWN:
            running = sorted({self._roles[h] for h, status in self._status.items()
                              if status is None and self._roles[h] not in SERVICE_ROLES})
            log.warning("%s still running %.0f s after every worker finished: stopping %s", ", ".join(running),
                        self.linger, "it" if len(running) == 1 else "them")
            self._become(JobState.SUCCEEDED)
        else:
            self._fail(self._early._replace(note=EARLY_NOTE))

    def _exited(self, event):
        result = event.result
        if event.child in self._status:
            self._status[event.child] = result.status
        if result.status != 0 and result.consequence and result.role == WORKER:
            self._consequences.append(result)
            self.outbox.append(("failed", result, self._time(event)))
        elif result.status != 0:
            early = result.role in SUPPORT_ROLES and self.state in (JobState.RUNNING, JobState.WAITING)
            self._fail(result._replace(note=EARLY_NOTE) if early and not result.note else result, at=self._time(event),
                       others=self._consequences)
        elif result.role == WORKER:
            self._workers_left -= 1
            if self._workers_left > 0:  # another rank of this host still runs
                return
            if self.user_failed():  # the script said it failed: the job fails as a whole, not this host alone
                self._fail(result._replace(status=1, note=USER_FAILURE_NOTE, recorded=True), at=self._time(event))
                return
            self.outbox.append(("worker-done", None, None))
            if self._all_done:
                self._wind_down()
            else:
                self._become(JobState.WAITING)
        elif self.state == JobState.WINDING_DOWN:
            if self._roles_done():
                self._become(JobState.SUCCEEDED)
        elif self._early is None:  # a role done before the workers: fine if they finish soon
            self._early = result
            self.deadline = self.clock() + self.early_grace

    def _wind_down(self):
        if self._roles_done():
            self._become(JobState.SUCCEEDED)
            return
        self._become(JobState.WINDING_DOWN)
        self.deadline = self.clock() + self.linger

    def _time(self, event):
        return self.clock() if event.at is None else event.at

    def _fail(self, result, tell=True, at=None, others=()):
        self.results.append(result)
        self.results.extend(others)
        if tell:
            self.outbox.append(("failed", result, self.clock() if at is None else at))
        self._become(JobState.FAILED)

    def _add_others(self, event):
        """The verdict on a failure of this host's own, which it decided already: the job's other
        failures, as the first host knew them."""
        if event.kind == PEER_FAILED and self.state == JobState.FAILED and event.result == self.results[0]:
            self.results[1:] = event.others  # this host's own other failures among them, in time order

    def stop_plan(self, signum, stop_grace, failure_grace):
        """How to stop what is left of the job now that it ended -> ``Stop`` (see ``stop_plan``);
        ``signum``: the launcher's first stop signal, or 0."""
        stalled = self.state == JobState.FAILED and self.results[0].role == STALL
        return stop_plan(self.state, self.signum or signum, stop_grace, failure_grace, self.linger, stalled)

    def _stop(self, signum):
        self.signum = signum
        self.outbox.append(("failed", stopped_result(self.host, signum), self.clock()))
        self._become(JobState.STOPPED)


def decider(policy, channel):
    """Where this host's failures go to be decided: the channel to the first host (where the job's
    rules are), or, for a job of one host, those rules here (a ``relay.Relay`` without sockets,
    which has no other host to hear from and so never posts)."""
    if channel is not None:
        return channel
    from .relay import Relay

    return Relay(policy.host, (policy.host,), post=None, clock=policy.clock)


def _deliver(policy, channel):
    """Send what the policy queued for the job's rules; take in what they decided at once."""
    while policy.outbox:
        kind, result, at = policy.outbox.pop(0)
        events = channel.worker_done() if kind == "worker-done" else channel.fail(result, at)
        for event in events:
            policy.handle(event)


def _wait(policy, processes, channel):
    """The next event, or None once the policy's or the job's rules' deadline has passed."""
    deadlines = [d for d in (policy.deadline, channel.deadline) if d is not None]
    if not deadlines:
        return processes.next_event(None)
    return processes.next_event(max(0.0, min(deadlines) - policy.clock()))


def _timed_out(policy, channel):
    policy.timed_out()
    for event in channel.tick():
        policy.handle(event)


def take_pending(policy, processes, channel):
    """Feed the policy what already happened (a stop, another host's failure) without waiting."""
    while not policy.state.final:
        event = processes.next_event(0)
        if event is None:
            break
        policy.handle(event)
    _deliver(policy, channel)


def run(policy, processes, specs, channel=None):
    """Start ``specs`` (roles first, the worker last) unless the job already ended, then decide
    until the policy reaches a final state. Returns the policy."""
    channel = decider(policy, channel)
    take_pending(policy, processes, channel)
    if policy.state.final:  # another host failed, or a stop came, while we were getting ready
        return policy
    handles = [processes.start(spec) for spec in specs]
    policy.started({h: spec.role for h, spec in zip(handles, specs) if spec.role in SUPPORT_ROLES},
                   workers=sum(1 for spec in specs if spec.role == WORKER))
    while not policy.state.final:
        event = _wait(policy, processes, channel)
        if event is None:
            _timed_out(policy, channel)
        else:
            policy.handle(event)
        _deliver(policy, channel)
    return policy


def run_helper(policy, processes, spec, channel=None):
    """Run a helper process (pip) to its end while the job is being prepared -> its
    ``JobResult``, or None when a stop or another host's failure ended the job meanwhile (the
    helper is then killed, and ``policy`` says why)."""
    channel = decider(policy, channel)
    take_pending(policy, processes, channel)
    if policy.state.final:
        return None
    handle = processes.start(spec)
    while True:
        event = processes.next_event(None)
        if event.kind == EXIT and event.child is handle:
            return event.result
        policy.handle(event)
        _deliver(policy, channel)
        if policy.state.final:
            processes.kill(handle)
            return None
