"""The job's decisions, driven from tables of event histories with a fake clock and a fake process
starter (no processes, no real time). Each row: what happens when, and what the loop decides."""

import signal

import pytest

from mx_training_toolkit import jobstate
from mx_training_toolkit.jobrules import SETTLE
from mx_training_toolkit.jobstate import EARLY_EXIT_GRACE, JobPolicy, JobState, Stop
from mx_training_toolkit.relay import Relay
from mx_training_toolkit.outcome import ALL_DONE, EXIT, PEER_FAILED, SIGNAL, Event, JobResult, stopped_result
from mx_training_toolkit.plan import ProcessSpec
from mx_training_toolkit.roles import PS_ROLES, WORKER
from fakes import FakeClock

GRACE = 3.0  # the parameter-server roles' time after every worker is done


class FakeProcesses:
    """Plays a history: ``(at, what, *args)`` rows. ``what`` is "exit" (role, status), "peer"
    (host, status), "all-done" or "signal" (signum). Exits name a role; they refer to the last
    process started with that role. Records what was started and killed."""

    def __init__(self, clock, history, host="algo-1"):
        self.clock = clock
        self.history = sorted(history, key=lambda row: row[0])
        self.host = host
        self.started = []
        self.killed = []
        self.waits = []

    def start(self, spec):
        self.started.append(spec.role)
        return spec.role  # the handle: the role's name is unique within a test

    def kill(self, handle):
        self.killed.append(handle)

    def next_event(self, timeout):
        self.waits.append(timeout)
        if self.history and (timeout is None or self.history[0][0] <= self.clock.now + timeout):
            row = self.history.pop(0)
            self.clock.now = max(self.clock.now, row[0])
            return self._event(*row[1:])
        if timeout is None:
            raise AssertionError("the loop would wait forever at t={}".format(self.clock.now))
        self.clock.now += timeout
        return None

    def _event(self, what, *args):
        if what == "exit":
            role, status = args
            return Event(EXIT, role, JobResult(role, self.host, status), child=role)
        if what == "peer":
            host, status = args
            return Event(PEER_FAILED, result=JobResult("worker", host, status))
        if what == "all-done":
            return Event(ALL_DONE)
        if what == "signal":
            return Event(SIGNAL, signum=args[0])
        if what == "posted":
            return args[0]
        raise ValueError(what)


class FakeChannel:
    """A member's channel: records what it is told; the verdicts come as events, if at all."""

    deadline = None

    def __init__(self):
        self.sent = []

    def tick(self):
        return []

    def worker_done(self):
        self.sent.append("worker-done")
        return []

    def fail(self, result, at):
        self.sent.append("failed {} {} {}".format(result.role, result.host, result.status))
        return []


def spec(role):
    return ProcessSpec(role, ("x",), {}, "/")


PS_FIRST_HOST = ("scheduler", "server", "worker")
PLAIN = ("worker",)


def play(history, roles=PLAIN, multi_host=False, host="algo-1"):
    clock = FakeClock()
    processes = FakeProcesses(clock, history, host)
    channel = FakeChannel() if multi_host else None
    policy = JobPolicy(host, multi_host, GRACE, clock)
    jobstate.run(policy, processes, [spec(r) for r in roles], channel)
    results = [(r.role, r.host, r.status, r.note) for r in policy.results]
    return policy.state, results, clock.now, processes, (channel.sent if channel else [])


EARLY = "it exited before the workers finished"

# (name, roles, multi_host, history, state, results, end time, messages to the other hosts)
TABLE = [
    ("success", PLAIN, False, [(5, "exit", "worker", 0)], JobState.SUCCEEDED, [], 5, []),
    ("worker fails", PLAIN, False, [(5, "exit", "worker", 3)], JobState.FAILED,
     [("worker", "algo-1", 3, "")], 5, []),
    ("worker fails, multi-host: the others are told", PLAIN, True, [(5, "exit", "worker", 3)], JobState.FAILED,
     [("worker", "algo-1", 3, "")], 5, ["failed worker algo-1 3"]),
    ("ps success: roles exit by themselves", PS_FIRST_HOST, False,
     [(5, "exit", "worker", 0), (5.1, "exit", "server", 0), (5.2, "exit", "scheduler", 0)],
     JobState.SUCCEEDED, [], 5.2, []),
    ("ps roles exit just before the worker", PS_FIRST_HOST, False,
     [(5, "exit", "scheduler", 0), (5.1, "exit", "server", 0), (5.3, "exit", "worker", 0)],
     JobState.SUCCEEDED, [], 5.3, []),
    ("all-done with roles lingering: they get the grace, then the job has succeeded", PS_FIRST_HOST, False,
     [(5, "exit", "worker", 0)], JobState.SUCCEEDED, [], 5 + GRACE, []),
    ("a role failing early", PS_FIRST_HOST, True, [(2, "exit", "server", 1)], JobState.FAILED,
     [("server", "algo-1", 1, EARLY)], 2, ["failed server algo-1 1"]),
    ("a role exiting 0 early, the worker never finishes", PS_FIRST_HOST, False,
     [(2, "exit", "scheduler", 0)], JobState.FAILED, [("scheduler", "algo-1", 0, EARLY)], 2 + EARLY_EXIT_GRACE, []),
    ("a role exiting 0 early, the worker finishes in time", PS_FIRST_HOST, False,
     [(2, "exit", "scheduler", 0), (2 + EARLY_EXIT_GRACE - 1, "exit", "worker", 0)],
     JobState.SUCCEEDED, [], 2 + EARLY_EXIT_GRACE - 1 + GRACE, []),
    ("a role failing after every worker is done", PS_FIRST_HOST, False,
     [(5, "exit", "worker", 0), (6, "exit", "server", 2)], JobState.FAILED, [("server", "algo-1", 2, "")], 6, []),
    ("multi-host: our worker done, then all-done, roles exit", PS_FIRST_HOST, True,
     [(5, "exit", "worker", 0), (9, "all-done"), (9.1, "exit", "server", 0), (9.2, "exit", "scheduler", 0)],
     JobState.SUCCEEDED, [], 9.2, ["worker-done"]),
    ("multi-host: waiting for the other hosts' workers takes as long as it takes", PLAIN, True,
     [(5, "exit", "worker", 0), (500, "all-done")], JobState.SUCCEEDED, [], 500, ["worker-done"]),
    ("multi-host: all-done, unused roles stopped after the grace", PS_FIRST_HOST, True,
     [(5, "exit", "worker", 0), (6, "all-done")], JobState.SUCCEEDED, [], 6 + GRACE, ["worker-done"]),
    ("peer fails before start: nothing is started", PS_FIRST_HOST, True, [(0, "peer", "algo-2", 3)],
     JobState.FAILED, [("worker", "algo-2", 3, "")], 0, []),
    ("peer fails during the run", PS_FIRST_HOST, True, [(4, "peer", "algo-2", 3)],
     JobState.FAILED, [("worker", "algo-2", 3, "")], 4, []),
    ("peer fails while we wait for its worker", PLAIN, True, [(4, "exit", "worker", 0), (7, "peer", "algo-2", 137)],
     JobState.FAILED, [("worker", "algo-2", 137, "")], 7, ["worker-done"]),
    ("stop signal before start", PLAIN, True, [(0, "signal", 15)], JobState.STOPPED, [], 0,
     ["failed launcher algo-1 143"]),
    ("stop signal while running", PS_FIRST_HOST, True, [(3, "signal", 15), (3.1, "exit", "worker", 143)],
     JobState.STOPPED, [], 3, ["failed launcher algo-1 143"]),
    ("stop signal while waiting for the other hosts", PLAIN, True, [(3, "exit", "worker", 0), (4, "signal", 1)],
     JobState.STOPPED, [], 4, ["worker-done", "failed launcher algo-1 129"]),
    ("stop signal while winding down", PS_FIRST_HOST, False, [(3, "exit", "worker", 0), (4, "signal", 2)],
     JobState.STOPPED, [], 4, []),
    ("the first decisive event wins: a failure, then a signal", PLAIN, False,
     [(3, "exit", "worker", 3), (3, "signal", 15)], JobState.FAILED, [("worker", "algo-1", 3, "")], 3, []),
]


@pytest.mark.parametrize("name,roles,multi_host,history,state,results,end,sent", TABLE, ids=[row[0] for row in TABLE])
def test_decisions(name, roles, multi_host, history, state, results, end, sent):
    got_state, got_results, now, processes, got_sent = play(history, roles, multi_host)
    assert (got_state, got_results, now, got_sent) == (state, results, pytest.approx(end), sent)


def test_a_failure_before_start_starts_nothing():
    _state, _results, _now, processes, _sent = play([(0, "peer", "algo-2", 3)], PS_FIRST_HOST, True)
    assert processes.started == []


def test_roles_start_before_the_worker():
    _state, _results, _now, processes, _sent = play([(1, "exit", "worker", 0)], PS_FIRST_HOST)
    assert processes.started == ["scheduler", "server", "worker"]


def test_the_loop_waits_for_events_not_ticks():
    # One blocking wait per event, and a bounded one only while a deadline is pending.
    _state, _results, _now, processes, _sent = play([(5, "exit", "worker", 0), (5.5, "exit", "server", 0),
                                                     (5.6, "exit", "scheduler", 0)], PS_FIRST_HOST)
    assert processes.waits == [0, None, GRACE, pytest.approx(GRACE - 0.5)]


def helper_history(history, multi_host=True):
    clock = FakeClock()
    processes = FakeProcesses(clock, history)
    policy = JobPolicy("algo-1", multi_host, GRACE, clock)
    channel = FakeChannel()
    result = jobstate.run_helper(policy, processes, spec("pip"), channel)
    return result, policy, processes, channel


@pytest.mark.parametrize("history,state,killed,sent", [
    ([(2, "exit", "pip", 0)], JobState.PREPARING, [], []),
    ([(2, "exit", "pip", 1)], JobState.PREPARING, [], []),
    ([(1, "peer", "algo-2", 2), (9, "exit", "pip", 0)], JobState.FAILED, ["pip"], []),
    ([(1, "signal", 15)], JobState.STOPPED, ["pip"], ["failed launcher algo-1 143"]),
])
def test_a_helper_during_preparation(history, state, killed, sent):
    result, policy, processes, channel = helper_history(history)
    assert (policy.state, processes.killed, channel.sent) == (state, killed, sent)
    assert (result is None) == state.final
    if result is not None:
        assert result.status == history[0][3]


def test_a_peer_failure_before_the_helper_starts_it_never_starts():
    result, policy, processes, _channel = helper_history([(0, "peer", "algo-2", 2)])
    assert (result, policy.state, processes.started) == (None, JobState.FAILED, [])


def test_final_states_ignore_later_events():
    clock = FakeClock()
    policy = JobPolicy("algo-1", False, GRACE, clock)
    policy.started({})
    policy.handle(Event(EXIT, "worker", JobResult("worker", "algo-1", 3), child="worker"))
    policy.handle(Event(SIGNAL, signum=15))
    policy.handle(Event(PEER_FAILED, result=JobResult("worker", "algo-2", 1)))
    assert policy.state == JobState.FAILED and len(policy.results) == 1 and policy.signum == 0


def test_every_state_is_documented():
    for state in JobState:
        assert "``{}``".format(state.name) in JobState.__doc__


class RankProcesses(FakeProcesses):
    """Handles are "rank<N>" for Horovod workers, so that exits can name a rank."""

    def start(self, spec):
        handle = spec.role if spec.rank is None else "rank{}".format(spec.rank)
        self.started.append(handle)
        return handle

    def _event(self, what, *args):
        if what == "consequence":  # a rank's failure that only says another rank failed first
            event = self._event("exit", *args)
            return event._replace(result=event.result._replace(consequence=True))
        event = super()._event(what, *args)
        if what == "exit" and args[0].startswith("rank"):  # the starter names the rank, as Supervisor does
            event = event._replace(role="worker", result=event.result._replace(role="worker", rank=int(args[0][4:])))
        return event

    def post(self, event):
        self.history.insert(0, (self.clock.now, "posted", event))


def play_ranks(history, ranks=(0, 1), rendezvous=True, multi_host=True, first_host=False):
    """A Horovod host's loop: a member's (``FakeChannel``), or the first host's, whose channel's
    relay keeps the job's rules (a real ``Relay`` on the fake clock; what it tells the other
    hosts is recorded in ``sent``)."""
    clock = FakeClock()
    processes = RankProcesses(clock, history)
    sent = []
    if first_host:
        channel = Relay("algo-1", ("algo-1", "algo-2"), processes.post, clock=clock,
                        send_all=lambda m: sent.append("{} {} {} {}".format(m["t"], m.get("host"), m.get("status"),
                                                                           len(m.get("others", ())))))
    else:
        channel = FakeChannel()
        sent = channel.sent
    specs = ([ProcessSpec("rendezvous", ("x",), {}, "/")] if rendezvous else []) + \
        [ProcessSpec("worker", ("x",), {}, "/", rank=r) for r in ranks]
    policy = JobPolicy("algo-1", multi_host, GRACE, clock)
    jobstate.run(policy, processes, specs, channel)
    return policy.state, [(r.role, r.status, r.rank, r.note) for r in policy.results], clock.now, sent


HOROVOD = [
    ("every rank done, then all-done: the rendezvous server is not waited for",
     [(5, "exit", "rank0", 0), (6, "exit", "rank1", 0), (8, "all-done")], JobState.SUCCEEDED, [], 8, ["worker-done"]),
    ("one rank done is not the host's worker done", [(5, "exit", "rank0", 0), (9, "exit", "rank1", 3)],
     JobState.FAILED, [("worker", 3, 1, "")], 9, ["failed worker algo-1 3"]),
    ("a rank fails first", [(2, "exit", "rank1", 134)], JobState.FAILED, [("worker", 134, 1, "")], 2,
     ["failed worker algo-1 134"]),
    ("the rendezvous server dies early", [(2, "exit", "rendezvous", 1)], JobState.FAILED,
     [("rendezvous", 1, None, EARLY)], 2, ["failed rendezvous algo-1 1"]),
    ("a consequence waits for its cause, here; it is listed below it", [(2, "consequence", "rank1", 1),
                                                                        (3, "exit", "rank0", 7)],
     JobState.FAILED, [("worker", 7, 0, ""), ("worker", 1, 1, "")], 3,
     ["failed worker algo-1 1", "failed worker algo-1 7"]),
    ("a consequence waits for the first host's verdict", [(2, "consequence", "rank1", 1), (2.5, "peer", "algo-2", 3)],
     JobState.FAILED, [("worker", 3, None, "")], 2.5, ["failed worker algo-1 1"]),
]


@pytest.mark.parametrize("name,history,state,results,end,sent", HOROVOD, ids=[row[0] for row in HOROVOD])
def test_horovod_decisions(name, history, state, results, end, sent):
    assert play_ranks(history) == (state, results, pytest.approx(end), sent)


def test_a_member_has_no_timer_of_its_own_for_a_consequence():
    # The verdict is the first host's: without it (and without a failure here) the loop waits.
    with pytest.raises(AssertionError, match="wait forever at t=2"):
        play_ranks([(2, "consequence", "rank1", 1)])


def peer_failure(host, status, consequence=False):
    return Event(PEER_FAILED, result=JobResult("worker", host, status, rank=3, consequence=consequence))


# The first host: its relay keeps the job's rules; ``sent``: what every other host is told.
FIRST_HOST = [
    ("an ordinary failure here decides at once", [(2, "exit", "rank1", 3)], JobState.FAILED,
     [("worker", 3, 1, "")], 2, ["abort algo-1 3 0"]),
    ("a consequence with no cause in sight decides when the settle time is up",
     [(2, "consequence", "rank1", 1)], JobState.FAILED, [("worker", 1, 1, "")], 2 + SETTLE, ["abort algo-1 1 0"]),
    ("a consequence here, then its cause here", [(2, "consequence", "rank1", 1), (2.5, "exit", "rank0", 6)],
     JobState.FAILED, [("worker", 6, 0, ""), ("worker", 1, 1, "")], 2.5, ["abort algo-1 6 1"]),
    ("a consequence here, then another host's ordinary failure: the cause", [
        (2, "consequence", "rank1", 1), (2.4, "posted", "algo-2", 2)], JobState.FAILED,
     [("worker", 2, 3, ""), ("worker", 1, 1, "")], 2.4, ["abort algo-2 2 1"]),
    ("a consequence that came from another host, then the settle time: the earliest is the root", [
        (1, "posted", "algo-2", 1, True), (2, "consequence", "rank1", 1)], JobState.FAILED,
     [("worker", 1, 3, ""), ("worker", 1, 1, "")], 1 + SETTLE, ["abort algo-2 1 1"]),
    ("this host's ranks done; another host's consequence is decided by the timer here",
     [(1, "exit", "rank0", 0), (1, "exit", "rank1", 0), (2, "posted", "algo-2", 1, True)], JobState.FAILED,
     [("worker", 1, 3, "")], 2 + SETTLE, ["abort algo-2 1 0"]),
]


class FirstHostProcesses(RankProcesses):
    """``(at, "posted", host, status[, consequence])``: another host's failure reaches the relay then."""

    def __init__(self, clock, history, relay_box):
        super().__init__(clock, history)
        self.relay_box = relay_box

    def _event(self, what, *args):
        if what == "posted" and isinstance(args[0], str):
            from mx_training_toolkit.messages import failure_message

            result = peer_failure(*args).result
            self.relay_box[0].received(result.host, failure_message(result))
            return self.next_event(0) or self._event("nothing")
        if what == "nothing":
            return Event("nothing")
        return super()._event(what, *args)


@pytest.mark.parametrize("name,history,state,results,end,sent", FIRST_HOST, ids=[row[0] for row in FIRST_HOST])
def test_the_first_hosts_decisions(name, history, state, results, end, sent):
    clock = FakeClock()
    box = []
    processes = FirstHostProcesses(clock, history, box)
    told = []
    relay = Relay("algo-1", ("algo-1", "algo-2"), processes.post, clock=clock,
                  send_all=lambda m: told.append("{} {} {} {}".format(m["t"], m.get("host"), m.get("status"),
                                                                     len(m.get("others", ())))))
    box.append(relay)
    specs = [ProcessSpec("worker", ("x",), {}, "/", rank=r) for r in (0, 1)]
    policy = JobPolicy("algo-1", True, GRACE, clock)
    jobstate.run(policy, processes, specs, relay)
    assert (policy.state, [(r.role, r.status, r.rank, r.note) for r in policy.results], clock.now, told) == \
        (state, results, pytest.approx(end), sent)


def peer_stopped(host, signum):
    return Event(PEER_FAILED, result=stopped_result(host, signum))


# A stop of another host's launcher (the platform stops every host) is a stop here too: the workers
# get its signal and the long grace, not the failure's short one.
PEER_STOPS = [
    ("another host stopped while running", PS_FIRST_HOST, [(3, "posted", peer_stopped("algo-2", 15))],
     JobState.STOPPED, 15),
    ("another host stopped by Ctrl-C", PLAIN, [(3, "posted", peer_stopped("algo-2", 2))], JobState.STOPPED, 2),
    ("another host stopped before start", PS_FIRST_HOST, [(0, "posted", peer_stopped("algo-2", 15))],
     JobState.STOPPED, 15),
    ("another host failed", PLAIN, [(3, "peer", "algo-2", 3)], JobState.FAILED, 0),
]


@pytest.mark.parametrize("name,roles,history,state,signum", PEER_STOPS, ids=[row[0] for row in PEER_STOPS])
def test_another_hosts_stop(name, roles, history, state, signum):
    clock = FakeClock()
    channel = FakeChannel()
    policy = JobPolicy("algo-1", True, GRACE, clock)
    jobstate.run(policy, FakeProcesses(clock, history), [spec(r) for r in roles], channel)
    assert (policy.state, policy.signum, channel.sent) == (state, signum, [])  # nothing told back
    assert [(r.role, r.host) for r in policy.results] == [("launcher" if signum else "worker", "algo-2")]


STOP_GRACE, FAILURE_GRACE = 105.0, 10.0
WORKERS_FIRST = ((WORKER,), GRACE, PS_ROLES)

# (name, history, the launcher's first stop signal, the Stop: signal, grace, first, linger, lingering)
STOP_PLANS = [
    ("a stop signal: the workers first, the long grace", [(3, "signal", 15)], 15,
     Stop(signal.SIGTERM, STOP_GRACE, *WORKERS_FIRST)),
    ("SIGINT stays SIGINT", [(3, "signal", 2)], 2, Stop(signal.SIGINT, STOP_GRACE, *WORKERS_FIRST)),
    ("SIGHUP becomes SIGTERM", [(3, "signal", 1)], 1, Stop(signal.SIGTERM, STOP_GRACE, *WORKERS_FIRST)),
    ("a stop while waiting for the other hosts", [(3, "exit", "worker", 0), (4, "signal", 15)], 15,
     Stop(signal.SIGTERM, STOP_GRACE, *WORKERS_FIRST)),
    ("another host's stop", [(3, "posted", peer_stopped("algo-2", 15))], 0,
     Stop(signal.SIGTERM, STOP_GRACE, *WORKERS_FIRST)),
    ("another host's Ctrl-C, then ours as SIGTERM", [(3, "posted", peer_stopped("algo-2", 2))], 15,
     Stop(signal.SIGINT, STOP_GRACE, *WORKERS_FIRST)),
    ("a failure here: everything at once, the short grace", [(3, "exit", "worker", 3)], 0,
     Stop(signal.SIGTERM, FAILURE_GRACE)),
    ("a failure elsewhere", [(3, "peer", "algo-2", 3)], 0, Stop(signal.SIGTERM, FAILURE_GRACE)),
    ("a failure, then a Ctrl-C: the failure decided, the signal is forwarded", [(3, "exit", "worker", 3)], 2,
     Stop(signal.SIGINT, FAILURE_GRACE)),
    ("a success: leftovers get the short grace", [(3, "exit", "worker", 0), (4, "all-done")], 0,
     Stop(signal.SIGTERM, FAILURE_GRACE)),
    ("a signal after the job finished", [(3, "exit", "worker", 0), (4, "all-done")], 15,
     Stop(signal.SIGTERM, FAILURE_GRACE)),
]


@pytest.mark.parametrize("name,history,signum,stop", STOP_PLANS, ids=[row[0] for row in STOP_PLANS])
def test_how_what_is_left_is_stopped(name, history, signum, stop):
    clock = FakeClock()
    policy = JobPolicy("algo-1", True, GRACE, clock)
    jobstate.run(policy, FakeProcesses(clock, history), [spec(r) for r in PS_FIRST_HOST], FakeChannel())
    assert policy.stop_plan(signum, STOP_GRACE, FAILURE_GRACE) == stop


def test_nothing_ran_yet_the_short_grace():
    assert jobstate.stop_plan(JobState.PREPARING, 15, STOP_GRACE, FAILURE_GRACE) == Stop(signal.SIGTERM, FAILURE_GRACE)
    assert jobstate.stop_plan(JobState.STOPPED, 2, STOP_GRACE, FAILURE_GRACE, 1.5) == Stop(
        signal.SIGINT, STOP_GRACE, (WORKER,), 1.5, PS_ROLES)


def test_a_worker_that_exits_0_after_writing_its_own_failure_file_fails_the_job_everywhere():
    from mx_training_toolkit.jobstate import JobPolicy, JobState
    from mx_training_toolkit.outcome import EXIT, USER_FAILURE_NOTE, Event, JobResult

    policy = JobPolicy("algo-2", multi_host=True, user_failed=lambda: True)
    policy.started({})
    policy.handle(Event(EXIT, result=JobResult("worker", "algo-2", 0), at=4.0))
    assert policy.state == JobState.FAILED
    assert policy.outbox == [("failed", JobResult("worker", "algo-2", 1, note=USER_FAILURE_NOTE, recorded=True), 4.0)]
