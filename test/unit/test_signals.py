"""The launcher's stop signals: the first one decides; a later SIGINT (a second Ctrl-C) hurries."""

import signal

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
