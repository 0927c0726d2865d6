"""The first host's sockets: accept, challenge, hello, ping, drop. Nothing here knows the job's rules.

One thread serves every connection (a selector), so strangers cannot exhaust threads. A
connection opens with ``challenge`` (a random nonce; for a Horovod job also ``ranks_per_host``);
it must answer ``hello`` (its host name, a nonce of its own, and its proof over our nonce) within
``HELLO_TIMEOUT`` seconds, from that host's address; it is then answered ``welcome`` (our proof over
its nonce) and becomes that host's connection. A malformed or oversized message, a wrong proof, an
address that is not the claimed host's, or silence is answered by closing the connection, with
one log line. Idle strangers cost a file descriptor each, up to ``MAX_STRANGERS``.

What the hosts say goes to ``listener`` (the relay): ``joined(host)`` (-> a message to tell it at
once, or None), ``received(host, message)``, ``gone(host)`` (its connection ended or went silent),
and ``failed(result)`` (a host that never joined, one configured differently, an internal error).
"""

import os
import selectors
import socket
import threading
import time
from typing import NamedTuple, Optional

from . import masking
from .errors import EXIT_HOSTS, ConfigError
from .log import get_logger
from .messages import BadMessage, LineReader, encode, is_nonce, is_proof, proof, verify
from .names import CHANNEL_SECRET_ENV
from .outcome import CHANNEL, EXIT_INTERNAL_CHANNEL, LAUNCHER, JobResult
from .signals import start_thread

log = get_logger("mx_training_toolkit.channel")

PING_EVERY = 1.0
SILENCE_LIMIT = 15.0  # no message (not even a ping) for this long: the peer is gone
HELLO_TIMEOUT = 5.0  # a connection must prove itself within this many seconds
MAX_STRANGERS = 256  # connections not yet proven; beyond this the oldest is dropped
SEND_TIMEOUT = 5.0
# Connections that never proved themselves (scanners, health checks, a flood) are logged one by one
# only DROP_LOG_LINES times a window of DROP_LOG_WINDOW seconds; the rest are counted, and the count
# is logged once the window ends. A flood must not flood the job's log (nor block the launcher on a
# log reader that is slower than the flood).
DROP_LOG_LINES = 10
DROP_LOG_WINDOW = 60.0


def internal_error(host, error):
    """An unexpected error in the channel -> the failure that ends the job, saying why."""
    return JobResult(CHANNEL, host, EXIT_INTERNAL_CHANNEL, (), "internal error in the host channel: {!r}".format(
        error))


class Conn:
    """One accepted connection: its reader, and the host it proved to be (None until then)."""

    def __init__(self, sock, address, nonce, now):
        self.sock = sock
        self.address = address
        self.nonce = nonce
        self.reader = LineReader()
        self.host = None
        self.opened = now  # the hello limit counts from here: bytes that never make a line do not extend it
        self.seen = now
        self.lock = threading.Lock()

    def send(self, message):
        with self.lock:
            try:
                self.sock.sendall(encode(message))
                return True
            except OSError:
                return False


class Hub:
    """Listens on ``port`` for the launchers of ``hosts`` (but ``host``, ours) and serves them."""

    def __init__(self, host, hosts, addresses, bind_address, port, secret, identity, join_timeout,
                 listener, ranks_per_host=None):
        self.host = host
        self.expected = set(hosts) - {host}
        self.addresses = dict(addresses)
        self.listener = listener
        self._secret = secret
        self._identity = identity
        self._ranks_per_host = ranks_per_host  # told in the challenge (None: not a Horovod job)
        self._lock = threading.Lock()
        self._peers = {}  # host -> Conn
        self._strangers = {}  # socket -> Conn, not yet proven
        self._closed = False
        self._drop_window = None  # when the current window of logged drops began
        self._drops_logged = self._drops_counted = 0
        self._join_timeout = join_timeout
        self._join_deadline = time.monotonic() + join_timeout  # None once the missing hosts were reported
        self._server = _listen(bind_address, port, host)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._server, selectors.EVENT_READ)

    def start(self):
        start_thread(self._serve)
        return self

    @property
    def port(self):  # the one asked for, or the one the system chose for 0
        return self._server.getsockname()[1]

    def missing(self):
        with self._lock:
            return self.expected - set(self._peers)

    def broadcast(self, message):
        """Send ``message`` to every host that has joined."""
        with self._lock:
            peers = list(self._peers.values())
        for conn in peers:
            conn.send(message)

    def close(self):
        self._closed = True
        try:
            self._server.close()
        except OSError:
            pass

    # ---- the serving thread ---------------------------------------------------------------------

    def _serve(self):
        try:
            self._loop()
        except Exception as e:  # never a silent death: the job ends, saying why
            if not self._closed:  # (a selector closed under it is no error)
                log.error("channel: internal error: %r", e)
                self.listener.failed(internal_error(self.host, e))

    def _loop(self):
        next_ping = time.monotonic() + PING_EVERY
        while not self._closed:
            wake = next_ping if self._join_deadline is None else min(next_ping, self._join_deadline)
            ready = self._selector.select(max(0.0, wake - time.monotonic()))
            for key, _mask in ready:
                if key.fileobj is self._server:
                    self._accept()
                else:
                    self._readable(key.data)
            now = time.monotonic()
            if now >= next_ping:
                next_ping = now + PING_EVERY
                self._housekeeping(now)

    def _accept(self):
        while True:
            try:
                sock, address = self._server.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                if not self._closed:
                    time.sleep(0.01)  # e.g. out of file descriptors: let the loop go on
                return
            self._challenge(sock, address[0])

    def _challenge(self, sock, address):
        sock.settimeout(SEND_TIMEOUT)  # reads only when ready; sends may wait this long
        conn = Conn(sock, address, os.urandom(16).hex(), time.monotonic())
        if len(self._strangers) >= MAX_STRANGERS:
            self._drop(min(self._strangers.values(), key=lambda c: c.opened),
                       "too many unproven connections; dropping the oldest")
        self._strangers[sock] = conn
        self._selector.register(sock, selectors.EVENT_READ, conn)
        challenge = {"t": "challenge", "nonce": conn.nonce}
        if self._ranks_per_host is not None:
            challenge["ranks_per_host"] = self._ranks_per_host
        conn.send(challenge)

    def _readable(self, conn):
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError, socket.timeout):
            return
        except OSError:
            data = b""
        if not data:
            self._gone(conn)
            return
        conn.seen = time.monotonic()
        try:
            messages = conn.reader.feed(data)
        except BadMessage as e:
            self._drop(conn, str(e))
            return
        for message in messages:
            if conn.host is None:
                if not self._hello(conn, message):
                    return
            else:
                self.listener.received(conn.host, message)

    def _hello(self, conn, message):
        """A stranger's first message: a valid hello makes it a host's connection -> whether it did."""
        claimed = self._check_hello(conn, message)
        if claimed is None:
            return False
        # The welcome goes first: nothing the listener says may reach the host before our proof.
        conn.send({"t": "welcome", "proof": proof(self._secret, message["nonce"], self.host, self._identity,
                                                  "welcome")})
        with self._lock:
            known = claimed in self._peers
            if not known:
                del self._strangers[conn.sock]
                conn.host = claimed
                self._peers[claimed] = conn
        if known:
            self._drop(conn, "a second connection as {}".format(claimed))
            return False
        news = self.listener.joined(claimed)
        if news is not None:  # the job already failed: tell a late host at once
            conn.send(news)
        else:
            log.info("channel: %s joined (%d of %d hosts)", claimed, len(self._peers) + 1, len(self.expected) + 1)
        return True

    def _check_hello(self, conn, message):
        """-> the host a hello proves ``conn`` to be, or None (the connection was dropped)."""
        judged = judge_hello(message, conn.address, conn.nonce, self.expected, self.addresses, self._secret,
                             self._identity)
        if judged.host is not None:
            return judged.host
        self._drop(conn, judged.why, tell=judged.tell)
        if judged.misconfigured:
            # A launcher of this job's host with another configuration: the job cannot run; fail it
            # everywhere now rather than wait for that host until the join timeout.
            claimed = message["host"]
            self.listener.failed(JobResult(CHANNEL, claimed, EXIT_HOSTS, (), "{} is configured differently: {}"
                                           .format(claimed, judged.why)))
        return None

    def _gone(self, conn):
        self._forget(conn)
        if conn.host is not None and conn.host in self.expected:
            self.listener.gone(conn.host)

    def _drop(self, conn, why, tell=False):
        if conn.host is not None or tell or self._one_by_one():  # a host of the job, or one told why: always
            log.warning("channel: closed a connection from %s: %s", conn.address, why)
        if tell:  # a host of the job that got something wrong must learn why, not "connection lost"
            conn.send({"t": "refused", "why": masking.mask(why)})  # masked before the receiver cuts it
        self._gone(conn)  # a host's connection that breaks the rules is that host lost

    def _one_by_one(self):
        """Whether the unproven connection being closed gets its own log line (the first
        ``DROP_LOG_LINES`` of the window), else it is counted."""
        now = time.monotonic()
        if self._drop_window is None or now - self._drop_window >= DROP_LOG_WINDOW:
            self._end_drop_window(now)
            self._drop_window = now
        if self._drops_logged < DROP_LOG_LINES:
            self._drops_logged += 1
            return True
        self._drops_counted += 1
        return False

    def _end_drop_window(self, now):
        """The window of logged drops is over: say how many unproven connections it closed without a line each."""
        if self._drops_counted:
            log.warning("channel: closed %d more unproven connections in %.0f s (the first %d of every %.0f s are "
                        "logged one by one)", self._drops_counted, now - self._drop_window, DROP_LOG_LINES,
                        DROP_LOG_WINDOW)
        self._drops_logged = self._drops_counted = 0
        self._drop_window = None

    def _forget(self, conn):
        self._strangers.pop(conn.sock, None)
        try:
            self._selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        try:
            conn.sock.close()
        except OSError:
            pass

    def _housekeeping(self, now):
        if self._drop_window is not None and now - self._drop_window >= DROP_LOG_WINDOW:
            self._end_drop_window(now)
        for conn in [c for c in self._strangers.values() if now - c.opened > HELLO_TIMEOUT]:
            self._drop(conn, "no valid hello within {:.0f} s".format(HELLO_TIMEOUT))
        with self._lock:
            peers = list(self._peers.values())
        for conn in peers:
            if conn.sock.fileno() < 0:
                continue
            if now - conn.seen > SILENCE_LIMIT:
                log.warning("channel: %s has been silent for %.0f s", conn.host, now - conn.seen)
                self._gone(conn)
            elif not self._closed:
                conn.send({"t": "ping"})
        missing = sorted(self.missing())
        if missing and self._join_deadline is not None and now >= self._join_deadline:
            self._join_deadline = None
            self.listener.failed(JobResult(LAUNCHER, ", ".join(missing), 1, (), "the launcher on {} did not connect "
                                           "within {:.0f} s".format(", ".join(missing), self._join_timeout)))


class Judged(NamedTuple):
    host: Optional[str]  # the host the hello proves the connection to be, or None
    why: str = ""  # else why not, for the log
    tell: bool = False  # whether the connection is told why (a launcher of this job that got it wrong)
    misconfigured: bool = False  # whether that fails the job (its host's own address, a proof of the right shape)


def judge_hello(message, address, nonce, expected, addresses, secret, identity):
    """A stranger's first message, from ``address``, answering our ``nonce`` -> ``Judged``. Malformed
    bytes, or a hello from an address that is not the claimed host's, change nothing (anyone can send
    those); a proof of the right shape but wrong, from the host's own address, is a launcher of this
    job configured differently."""
    host = message.get("host")
    claimed = host if isinstance(host, str) else None
    given = message.get("proof")
    if message.get("t") != "hello" or claimed is None or not isinstance(given, str) or \
            not is_nonce(message.get("nonce")):
        return Judged(None, "a connection that did not introduce itself")
    if claimed not in expected:
        return Judged(None, "a hello from {!r}, which is not another host of this job".format(claimed[:100]))
    if addresses.get(claimed) not in (None, address):
        return Judged(None, "a hello as {} from {}, which is not {}'s address".format(claimed, address, claimed))
    if verify(given, secret, nonce, claimed, identity):
        return Judged(claimed)
    why = "a hello as {} without this job's proof (every host needs the same hyperparameters.json and {})".format(
        claimed, CHANNEL_SECRET_ENV)
    return Judged(None, why, True, is_proof(given) and addresses.get(claimed) == address)


def _listen(bind_address, port, host):
    """Listen at ``port`` (a ``ports.Port``: its number, and the rule that chose it for the message)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((bind_address, port.number))
    except OSError as e:
        server.close()
        raise ConfigError("the launchers' channel cannot listen on port {} on {} ({}); {}".format(
            port.number, host, e.strerror or e, port.advice)) from e
    server.listen(128)
    server.setblocking(False)
    return server
