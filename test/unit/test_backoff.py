"""The one backoff helper of the launcher's retry loops (host names, the launchers' channel)."""

import itertools

import pytest

from mx_training_toolkit import backoff
from fakes import FakeClock


@pytest.mark.parametrize("first, factor, cap, expected", [
    (0.1, 2, 5.0, [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]),
    (0.05, 2, 1.0, [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]),
    (1.0, 3, None, [1, 3, 9, 27, 81, 243, 729, 2187]),
    (0.5, 1, 0.2, [0.2] * 8),  # a first pause above the cap is capped too
    (2.0, 1, None, [2.0] * 8),
])
def test_delays(first, factor, cap, expected):
    assert list(itertools.islice(backoff.delays(first, factor, cap), 8)) == pytest.approx(expected)


def test_delays_at_the_cap_stay_finite():
    pauses = backoff.delays(1.0, 10.0, 2.0)
    assert list(itertools.islice(pauses, 2000))[-1] == 2.0


def run(timeout, first=0.1, cap=5.0, succeed_at=None, attempt_takes=0.0):
    """Drive ``attempts`` like a caller: -> (the waited values seen, whether it succeeded, the clock)."""
    fake = FakeClock()
    seen = []
    ok = False
    for n, waited in enumerate(backoff.attempts(timeout, first, cap=cap, clock=fake.clock, sleep=fake.sleep), 1):
        seen.append(waited)
        fake.now += attempt_takes
        if n == succeed_at:
            ok = True
            break
    return seen, ok, fake


@pytest.mark.parametrize("timeout, succeed_at, sleeps, ok", [
    (60, 1, [], True),  # at once: no sleep at all
    (60, 5, [0.1, 0.2, 0.4, 0.8], True),
    (1.0, None, [0.1, 0.2, 0.4, 0.3], False),  # the last pause is cut short at the deadline
    (20, None, [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 3.7], False),
    (0, None, [], False),  # one attempt, no waiting
    (-1, None, [], False),
])
def test_attempts(timeout, succeed_at, sleeps, ok):
    seen, succeeded, fake = run(timeout, succeed_at=succeed_at)
    assert fake.sleeps == pytest.approx(sleeps)
    assert succeeded is ok
    assert len(seen) == len(sleeps) + 1  # one more attempt than pauses: the last one at the deadline
    assert seen[0] == 0.0
    assert seen == pytest.approx([sum(sleeps[:i]) for i in range(len(seen))])
    if not ok and timeout > 0:
        assert fake.now == pytest.approx(timeout)


def test_slow_attempts_count_against_the_deadline():
    seen, ok, fake = run(10, attempt_takes=3.0)
    # attempt at 0 (ends 3), pause 0.1, attempt at 3.1 (ends 6.1), pause 0.2, attempt at 6.3
    # (ends 9.3), pause 0.4, attempt at 9.7 (ends 12.7): past the deadline, so no more
    assert seen == pytest.approx([0.0, 3.1, 6.3, 9.7])
    assert fake.sleeps == pytest.approx([0.1, 0.2, 0.4])
    assert not ok


def test_an_attempt_that_overruns_the_deadline_is_the_last():
    seen, ok, fake = run(2, attempt_takes=5.0)
    assert seen == [0.0] and fake.sleeps == [] and not ok
