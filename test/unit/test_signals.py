"""The launcher's stop signals: the first one decides; a later SIGINT (a second Ctrl-C) hurries."""

import signal
import threading

import pytest

from mx_training_toolkit.outcome import SIGNAL
from mx_training_toolkit.signals import StopSignals


@pytest.mark.parametrize("received,posted,hurried", [
    ([signal.SIGTERM], [signal.SIGTERM], 0),
    ([signal.SIGINT, signal.SIGINT], [signal.SIGINT], 1),  # a second Ctrl-C
    ([signal.SIGTERM, signal.SIGINT], [signal.SIGTERM], 1),  # Ctrl-C during the platform's stop
    ([signal.SIGINT, signal.SIGINT, signal.SIGINT], [signal.SIGINT], 2),
    ([signal.SIGTERM, signal.SIGTERM], [signal.SIGTERM], 0),  # the first signal decides, nothing else
    ([signal.SIGINT, signal.SIGHUP, signal.SIGQUIT], [signal.SIGINT], 0),
])
def test_the_first_signal_decides_and_a_later_sigint_hurries(received, posted, hurried):
    events, hurries = [], []
    signals = StopSignals(events.append, lambda: hurries.append(1))
    for signum in received:
        signals._on_signal(signum, None)
    assert [(e.kind, e.signum) for e in events] == [(SIGNAL, s) for s in posted]
    assert (signals.signum, len(hurries)) == (received[0], hurried)


def test_without_a_hurry_a_second_sigint_changes_nothing():
    events = []
    signals = StopSignals(events.append)
    signals._on_signal(signal.SIGINT, None)
    signals._on_signal(signal.SIGINT, None)
    assert len(events) == 1


@pytest.fixture
def installed():
    """StopSignals installed in this process for real, everything restored afterwards."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                                                 signal.SIGCHLD)}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    events = []
    signals = StopSignals(events.append)
    try:
        yield signals, events
    finally:
        import os

        signal.set_wakeup_fd(-1)
        if signals._arrivals is not None:
            os.close(signals._arrivals)
        for s, h in handlers.items():
            signal.signal(s, h)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


@pytest.mark.parametrize("sent", [(signal.SIGTERM, signal.SIGHUP), (signal.SIGQUIT, signal.SIGINT),
                                  (signal.SIGHUP, signal.SIGTERM)])
def test_of_two_signals_pending_at_once_the_first_to_arrive_decides(installed, sent):
    """Two signals that arrive while the main thread waits in C: their C handlers write their numbers
    to the wakeup pipe in the order they arrived (simulated here), then Python runs both handlers
    in signal-number order. SIGTERM then SIGHUP back to back was reported as SIGHUP."""
    import os

    signals, events = installed
    signals.install()
    wakeup = signal.set_wakeup_fd(-1)
    os.write(wakeup, bytes(sent))  # what the C handlers write, in arrival order
    os.close(wakeup)
    for signum in sorted(sent):
        signals._on_signal(signum, None)
    assert (signals.signum, [e.signum for e in events]) == (sent[0], [sent[0]])


def test_a_stop_signal_held_back_at_start_up_is_handled_once_installed(installed):
    from mx_training_toolkit.signals import block_stop_signals

    signals, events = installed
    block_stop_signals()
    # To this thread: another thread of the test process (unlike the launcher at start-up) would take it.
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)  # pending: neither the default action nor lost
    assert events == []
    signals.install()
    assert (signals.signum, [e.signum for e in events]) == (signal.SIGTERM, [signal.SIGTERM])
