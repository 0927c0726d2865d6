"""The ``train`` console script.

The stop signals are held back before the launcher's modules are imported (tens of milliseconds
on a busy machine): a signal in that window then neither takes its default action (the launcher
killed without an outcome, a stale ``success`` left standing) nor is lost (as PID 1 in a container
a signal without a handler is dropped, but a blocked one stays pending). ``StopSignals.install``
lets it through once the handlers are in place. Only the interpreter's own start-up comes before.
"""

import signal


def train():
    signal.pthread_sigmask(signal.SIG_BLOCK, (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT))
    from .training import main

    main()
