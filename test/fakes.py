"""Fakes shared by the unit tests (``test/`` is on sys.path during pytest runs)."""


class FakeClock:
    """A clock that moves only when slept on or when a test moves it: ``clock()`` (or the
    instance itself, called) reads it, ``sleep(s)`` records the pause and moves it."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
