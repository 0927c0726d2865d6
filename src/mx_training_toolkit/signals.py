"""The launcher's stop signals, and threads that never take them.

A signal sent to the launcher's process is handled by whichever thread the kernel picks among
those that do not block it; its Python handler then runs only when the main thread next runs
Python code. If a reader thread took it, a main thread blocked in ``SimpleQueue.get`` would
never wake. So every other thread is started with the signals blocked (``start_thread``): the
main thread takes them, its wait is interrupted, the handler posts a ``SIGNAL`` event.
"""

import signal
import threading

from .errors import Terminated
from .outcome import CHILD, SIGNAL, Event

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
HANDLED = STOP_SIGNALS + (signal.SIGCHLD,)


def block_stop_signals():
    """Hold the stop signals back (pending, never lost, and never the default action that would
    kill the launcher without an outcome) until ``StopSignals.install`` has the handlers in place."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def forwarded(signum):
    """The signal the job gets when the launcher received ``signum``: SIGINT stays SIGINT (a
    script's KeyboardInterrupt), every other stop signal becomes SIGTERM, the one scripts trap."""
    return signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM


def start_thread(target, *args):
    """Start a daemon thread running ``target(*args)`` that never receives the launcher's signals."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)  # a new thread inherits the mask
    try:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return thread


class StopSignals:
    """The stop signals (SIGTERM, SIGINT, SIGHUP, SIGQUIT): the first one decides. Its handler
    posts a ``SIGNAL`` event (``post`` must be safe in a signal handler: ``SimpleQueue.put`` is);
    inside ``interruptible()`` (steps that may block outside the run loop: a download, waiting
    for hosts) it also raises ``Terminated`` at once. A SIGINT after the first stop signal (a
    second Ctrl-C) calls ``hurry``: stop waiting for the job. Other later signals change nothing.
    SIGCHLD posts a ``CHILD`` event, so that orphans are reaped as they exit."""

    def __init__(self, post, hurry=None):
        self.post = post
        self.hurry = hurry
        self.signum = 0
        self._raise = False
        self._arrivals = None  # the read end of the wakeup pipe: signal numbers in the order they arrived
        self._earliest = None  # the first stop signal read from it

    def install(self):
        """Install the handlers (main thread only), then let through the stop signals that
        ``block_stop_signals`` held back at start-up: one that arrived meanwhile is handled now."""
        import os

        read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        self._arrivals = read
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        signal.signal(signal.SIGCHLD, self._on_child)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def _drain(self):
        """Read the wakeup pipe: the C handler writes each signal's number to it as it arrives.
        Python runs pending handlers in signal-number order (SIGHUP before SIGTERM); the pipe
        keeps the order of arrival. The first stop signal read is kept."""
        import os

        while self._arrivals is not None:
            try:
                data = os.read(self._arrivals, 4096)
            except (BlockingIOError, InterruptedError):
                return
            if not data:
                return
            if self._earliest is None:
                self._earliest = next((n for n in data if n in STOP_SIGNALS), None)

    def _on_signal(self, signum, frame):
        self._drain()
        if self.signum:  # the first signal decides; the stop is already under way
            if signum == signal.SIGINT and self.hurry is not None:
                self.hurry()
            return
        signum = signal.Signals(self._earliest or signum)
        self.signum = signum
        self.post(Event(SIGNAL, signum=signum))
        if self._raise:
            raise Terminated(signum)

    def _on_child(self, signum, frame):
        self._drain()  # SIGCHLD's bytes must not fill the pipe; a stop signal's number read here is kept
        self.post(Event(CHILD))

    def interruptible(self):
        """A context in which a stop signal raises ``Terminated`` (one already received, at entry)."""
        return _Interruptible(self)


class _Interruptible:
    def __init__(self, signals):
        self._signals = signals

    def __enter__(self):
        if self._signals.signum:
            raise Terminated(self._signals.signum)
        self._signals._raise = True

    def __exit__(self, *exc):
        self._signals._raise = False
