"""Pacing for the launcher's bounded retry loops: exponential backoff that never sleeps past a deadline.

Pure apart from the clock and the sleep, which every function takes as arguments (tests pass fakes).
"""

import time


def delays(first, factor=2.0, cap=None):
    """Yield the pauses between attempts, forever: ``first``, ``first * factor``, ... each at most ``cap``."""
    delay = first
    while True:
        yield delay if cap is None else min(delay, cap)
        if cap is None or delay < cap:  # once at the cap, stop multiplying (no overflow to inf)
            delay *= factor


def attempts(timeout, first, factor=2.0, cap=None, clock=time.monotonic, sleep=time.sleep):
    """Pace a retry loop: yield once before each attempt, with the seconds waited so far.

    The caller makes its attempt in the loop body and leaves the loop once one succeeds. Between
    attempts this sleeps ``delays(first, factor, cap)``, cut short so as never to sleep past
    ``timeout`` seconds after the first attempt; one last attempt is made at the deadline, then the
    loop ends (and the caller reports the failure). A ``timeout`` of 0 gives a single attempt.
    """
    began = clock()
    pauses = delays(first, factor, cap)
    last = False
    while True:
        yield clock() - began
        left = timeout - (clock() - began)  # after the attempt, which may itself have taken time
        if last or left <= 0:
            return
        pause = next(pauses)
        # A pause that reaches the deadline is followed by the last attempt, whatever the clock
        # says then (floating point may leave it a hair short of the deadline).
        last = pause >= left
        sleep(min(pause, left))
