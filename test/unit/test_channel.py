"""``channel``: the coordinator and a member on loopback, end to end: the hello both ways, a
failure's age turned into the first host's clock, the verdict with the other failures."""

import queue
import time

import pytest

from mx_training_toolkit import channel
from mx_training_toolkit.errors import HostChannelError
from mx_training_toolkit.jobrules import SETTLE
from mx_training_toolkit.outcome import ALL_DONE, PEER_FAILED, JobResult
from mx_training_toolkit.ports import Port
from mx_training_toolkit.relay import WAKE

SECRET = b"s" * 32
IDENTITY = '["job",["algo-1","algo-2"],9000]'
HOSTS = ("algo-1", "algo-2")
ANY_PORT = Port(0, "the launchers' channel", "_ps_port + 1")  # the system picks one
ADDRESSES = {"algo-1": "127.0.0.1", "algo-2": "127.0.0.2"}


@pytest.fixture
def pair():
    here, there = queue.Queue(), queue.Queue()
    coordinator = channel.Coordinator("algo-1", HOSTS, ADDRESSES, "127.0.0.1", ANY_PORT, here.put, 30.0, SECRET,
                                      IDENTITY)
    member = channel.Member("algo-2", "algo-1", "127.0.0.1", coordinator.port, there.put, 5.0, SECRET, IDENTITY,
                            "127.0.0.2")
    yield coordinator, member, here, there
    member.close()
    coordinator.close()


def wait_until(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_members_consequence_is_held_from_when_it_happened_then_the_cause_decides(pair):
    coordinator, member, here, there = pair
    consequence = JobResult("worker", "algo-2", 1, ("tb",), rank=3, consequence=True, reason="HorovodInternalError")
    member.fail(consequence, at=time.monotonic() - 1.0)
    wait_until(lambda: coordinator.deadline is not None)
    assert coordinator.deadline == pytest.approx(time.monotonic() - 1.0 + SETTLE, abs=0.5)
    cause = JobResult("worker", "algo-1", 6, ("ValueError: bad",), rank=0, reason="ValueError: bad")
    [event] = coordinator.fail(cause)
    assert (event.kind, event.result, event.others) == (PEER_FAILED, cause, (consequence,))
    told = there.get(timeout=10)
    assert (told.kind, told.result.host, told.result.status, told.result.stderr_tail) == \
        (PEER_FAILED, "algo-1", 6, ("ValueError: bad",))
    assert [(r.host, r.rank, r.consequence, r.reason) for r in told.others] == \
        [("algo-2", 3, True, "HorovodInternalError")]
    # This host's loop was only woken for the timer; its own call got the verdict back.
    assert [here.get_nowait().kind for _ in range(here.qsize())] == [WAKE]


def test_every_worker_done(pair):
    coordinator, member, here, there = pair
    member.worker_done()
    returned = coordinator.worker_done()  # whichever comes last decides: this call, or the member's message
    assert (returned[0] if returned else here.get(timeout=10)).kind == ALL_DONE
    assert there.get(timeout=10).kind == ALL_DONE


def test_a_member_refuses_a_first_host_without_the_jobs_secret():
    posted = queue.Queue()
    coordinator = channel.Coordinator("algo-1", HOSTS, ADDRESSES, "127.0.0.1", ANY_PORT, posted.put, 30.0, b"x" * 32,
                                      IDENTITY)
    try:
        member = channel.Member("algo-2", "algo-1", "127.0.0.1", coordinator.port, posted.put, 5.0, SECRET,
                                IDENTITY, "127.0.0.2")
        events = [posted.get(timeout=10), posted.get(timeout=10)]
        member.close()
    finally:
        coordinator.close()
    notes = sorted(e.result.note for e in events)
    assert notes[0].startswith("algo-2 is configured differently")  # the first host's side
    assert notes[1].startswith("the launcher on algo-1 refused algo-2")  # the member's side


def test_no_first_host_listening_is_a_clear_error():
    with pytest.raises(HostChannelError, match="cannot reach the launcher on algo-1"):
        channel.Member("algo-2", "algo-1", "127.0.0.1", 1, lambda event: None, 0.2, SECRET, IDENTITY)
