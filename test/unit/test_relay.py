"""The first host's relay, without sockets: what other hosts say reaches the job's rules with its
time turned into this host's clock, and the verdict goes to every host (``sent``) and to this
host's loop (``posted`` when another host caused it, returned when this host's own call did)."""

import pytest

from mx_training_toolkit.jobrules import RECHECK, SETTLE
from mx_training_toolkit.messages import failure_message
from mx_training_toolkit.outcome import ALL_DONE, PEER_FAILED, Event, JobResult
from mx_training_toolkit.relay import LOST, WAKE, Relay
from fakes import FakeClock


class Seen:
    def __init__(self):
        self.clock = FakeClock()
        self.clock.now = 100.0
        self.sent = []
        self.posted = []
        self.relay = Relay("algo-1", ("algo-1", "algo-2", "algo-3"), self.posted.append, self.sent.append,
                           self.clock)


def rank_failure(host, status, consequence=False, rank=1):
    return JobResult("worker", host, status, ("Traceback", "Error"), rank=rank, consequence=consequence,
                     reason="E: x", recorded=True)


def test_another_hosts_failure_gets_its_time_on_this_hosts_clock_from_its_age():
    seen = Seen()
    seen.relay.received("algo-2", failure_message(rank_failure("algo-2", 1, True), age=1.25))
    assert seen.relay.deadline == pytest.approx(100.0 - 1.25 + SETTLE)
    assert (seen.sent, seen.posted) == ([], [Event(WAKE)])  # held; the loop must now wait for the timer


def test_an_ordinary_failure_from_another_host_is_told_to_every_host_and_posted_here():
    seen = Seen()
    seen.relay.received("algo-2", failure_message(rank_failure("algo-2", 1, True), age=0.0))
    seen.clock.now += 0.5
    cause = rank_failure("algo-3", 7, rank=5)
    seen.relay.received("algo-3", failure_message(cause, age=0.1))
    [abort] = seen.sent
    assert (abort["t"], abort["host"], abort["status"], abort["tail"]) == ("abort", "algo-3", 7, ["Traceback", "Error"])
    assert [(o["host"], o["rank"], o["consequence"], o["tail"]) for o in abort["others"]] == [("algo-2", 1, True, [])]
    [wake, event] = seen.posted  # the consequence woke the loop; the cause decided
    assert (wake, event.kind, event.result, [r.host for r in event.others]) == \
        (Event(WAKE), PEER_FAILED, cause, ["algo-2"])
    assert seen.relay.joined("algo-2") is abort  # a host that joins late hears it at once


def test_a_host_cannot_speak_for_another():
    seen = Seen()
    seen.relay.received("algo-2", failure_message(rank_failure("algo-3", 4)))
    assert seen.posted[0].result.host == "algo-2" and seen.sent[0]["host"] == "algo-2"


def test_this_hosts_own_failure_comes_back_as_events_not_posted():
    seen = Seen()
    assert seen.relay.fail(rank_failure("algo-1", 1, True), at=99.0) == []
    assert seen.relay.tick() == []  # not yet
    seen.clock.now = 99.0 + SETTLE
    [event] = seen.relay.tick()
    assert (event.kind, event.result.host, seen.posted, [m["t"] for m in seen.sent]) == \
        (PEER_FAILED, "algo-1", [], ["abort"])


def test_done_counting():
    seen = Seen()
    assert seen.relay.worker_done() == []
    seen.relay.received("algo-2", {"t": "worker-done"})
    assert seen.posted == [] and seen.relay.joined("algo-3") is None
    seen.relay.received("algo-3", {"t": "worker-done"})
    assert (seen.sent, seen.posted) == ([{"t": "all-done"}], [Event(ALL_DONE)])


def test_a_host_lost_before_the_end_fails_the_job_and_not_after():
    seen = Seen()
    seen.relay.gone("algo-2")
    assert seen.posted[0].result == JobResult("launcher", "algo-2", 1, (), LOST.format("algo-2"))
    seen = Seen()
    for host in ("algo-2", "algo-3"):
        seen.relay.received(host, {"t": "worker-done"})
    seen.relay.worker_done()
    seen.relay.gone("algo-2")
    assert [m["t"] for m in seen.sent] == ["all-done"]


def test_pings_and_unknown_messages_change_nothing():
    seen = Seen()
    seen.relay.received("algo-2", {"t": "ping"})
    seen.relay.received("algo-2", {"t": "surprise"})
    assert (seen.sent, seen.posted, seen.relay.deadline) == ([], [], None)


def test_the_stall_rule_hears_other_hosts_in_their_pings_and_this_host_when_it_ticks():
    clock = FakeClock()
    clock.now = 100.0
    sent, posted, idle = [], [], [0.0]
    relay = Relay("algo-1", ("algo-1", "algo-2"), posted.append, sent.append, clock, stall=5.0,
                  idle=lambda: idle[0])
    assert relay.tick() == [] and relay.deadline == 100.0 + RECHECK  # algo-2 has said nothing yet
    for bad in ("5", True, -1, None, float("nan")):  # not a number of seconds: not heard
        relay.received("algo-2", {"t": "ping", "idle": bad})
    relay.received("algo-2", {"t": "ping", "idle": 3.0})
    assert relay.tick() == [] and relay.deadline == 105.0  # algo-1 idle 0 at 100
    clock.now, idle[0] = 106.0, 6.0
    assert relay.tick() == []  # algo-2 said 3 s at 100: it must say 5 first
    relay.received("algo-2", {"t": "ping", "idle": 9.0})
    events = relay.tick()
    assert [e.kind for e in events] == [PEER_FAILED] and events[0].result.role == "stall"
    assert events[0].result.note == "no output from any worker for 5 s" and events[0].result.status == 124
    assert [m["t"] for m in sent] == ["abort"] and sent[0]["role"] == "stall" and posted == []


def test_without_the_watchdog_idle_pings_change_nothing():
    seen = Seen()
    seen.relay.received("algo-2", {"t": "ping", "idle": 1e9})
    assert (seen.relay.tick(), seen.relay.deadline, seen.sent) == ([], None, [])
