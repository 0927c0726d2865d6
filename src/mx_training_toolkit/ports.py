"""Every port the job uses, each from ``_ps_port`` by one rule, with the words that name the rule.

One function per rule: the scheduler's port and the rendezvous server's (``_ps_port`` itself),
the launchers' channel (``_ps_port + 1``, or ``_ps_port - 1`` when ``_ps_port`` is 65535), the
check that a port is free, and ``mx-train``'s choice of a ``_ps_port`` whose channel port is free
too. A ``Port`` carries its rule's words, so that a message about a port names the rule that chose it.
"""

from typing import NamedTuple

from .errors import ConfigError
from .names import PS_PORT_HP

FIELD = "hyperparameters.json field {!r}".format(PS_PORT_HP)
MAX_PORT = 65535


class Port(NamedTuple):
    """A port of the job: its number, what listens there, and the rule that chose it."""

    number: int
    user: str  # what listens there: "the scheduler", "the rendezvous server", "the launchers' channel"
    rule: str  # how it follows from _ps_port: "_ps_port", "_ps_port + 1", "_ps_port - 1"

    @property
    def advice(self):
        """What to do when the port is taken, naming the rule that chose it."""
        if self.rule == PS_PORT_HP:
            return "choose another with the hyperparameter _ps_port ({})".format(FIELD)
        return "the port is {}: choose another _ps_port ({})".format(self.rule, FIELD)


def scheduler_port(ps_port):
    """ps-lite's scheduler listens at _ps_port itself (DMLC_PS_ROOT_PORT)."""
    return Port(ps_port, "the scheduler", PS_PORT_HP)


def rendezvous_port(ps_port):
    """Horovod's rendezvous server listens at _ps_port itself (a Horovod job has no scheduler)."""
    return Port(ps_port, "the rendezvous server", PS_PORT_HP)


def channel_port(ps_port):
    """The launchers' own channel listens on the first host at the port after _ps_port, or at the
    one before when _ps_port is the last port there is."""
    if ps_port < MAX_PORT:
        return Port(ps_port + 1, "the launchers' channel", PS_PORT_HP + " + 1")
    return Port(ps_port - 1, "the launchers' channel", PS_PORT_HP + " - 1")


def check_free(port, host):
    """Raise ``ConfigError`` when ``port`` (a ``Port``) is taken on this machine: the scheduler and
    the rendezvous server bind every interface, and would otherwise fail with a less clear word."""
    import socket  # only a job with a port of its own needs sockets

    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as zmq does: TIME_WAIT is no conflict
    try:
        probe.bind(("", port.number))
    except OSError as e:
        raise ConfigError("port {} on {} is already in use, so {} cannot start ({}); {}".format(
            port.number, host, port.user, e.strerror or e, port.advice)) from e
    finally:
        probe.close()


def free_ps_port(tries=50):
    """A ``_ps_port`` for ``mx-train``: free on this machine, and so is its channel port."""
    import socket

    for _ in range(tries):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("", port))
                b.bind(("", channel_port(port).number))
            return port
        except OSError:
            continue
    raise RuntimeError("no free pair of ports found")
