"""The launchers' own channel between hosts of one job.

ps-lite gives no signal when a process of the job dies: the other workers block forever inside
kvstore calls. So every launcher keeps a TCP connection to the launcher on the first host (the
coordinator). A failure anywhere, or a host that disappears, ends the job everywhere; and no
host finishes before every worker of the job is done.

Messages are JSON lines of at most ``messages.MAX_MESSAGE`` bytes. The coordinator opens with
``challenge`` (a random nonce; for a Horovod job also ``ranks_per_host``, the first host's count,
which every other host compares with its own once it has joined); a host answers ``hello`` with its
name, a nonce of its own and a proof (an HMAC of the nonce, its name and the job's identity, keyed
with the job's secret, see ``messages.job_secret``); the coordinator answers ``welcome`` with its
own proof over the host's nonce, and a host takes no other message from a first host that has not
proven itself (something that took the first host's address first cannot answer ``all-done``); then
``worker-done``, ``failed`` and ``ping`` go to the coordinator, and ``all-done``, ``abort`` and
``ping`` come back. A peer is accepted as host H only from H's address and with a valid proof.

Threat model. This stops anything on the network that does not hold the job's configuration: port
scanners, health checks, other jobs, a hostile container on the same network. They cannot join as
a host, end the job, make it succeed, crash or stall the coordinator: a connection that does not
prove itself within ``HELLO_TIMEOUT`` seconds, sends a bad or oversized message, or comes from an
address that is not the claimed host's, is closed with one log line, and one thread serves every
connection, so idle strangers cost a file descriptor each, up to ``MAX_STRANGERS``. It does not
stop someone who can read the job's hyperparameters (the key is derived from them, unless
``MX_TRAINING_CHANNEL_SECRET`` gives one), nor an attacker on the path between two hosts who can
inject into an established connection: messages after the hello are not signed or encrypted.

Events for the run loop are posted with ``post(Event)``: ``PEER_FAILED`` (``result`` names role,
host and status) or ``ALL_DONE``.
"""

import errno
import os
import selectors
import socket
import threading
import time

from . import masking
from .errors import EXIT_HOSTS, ConfigError, HostChannelError
from .log import get_logger
from .messages import (BadMessage, LineReader, encode, failure_message, field, is_nonce, is_proof, proof,
                       reported_result, verify)
from .names import CHANNEL_SECRET_ENV
from .outcome import ALL_DONE, CHANNEL, EXIT_INTERNAL_CHANNEL, LAUNCHER, PEER_FAILED, Event, JobResult
from .signals import start_thread

log = get_logger(__name__)

PING_EVERY = 1.0
SILENCE_LIMIT = 15.0  # no message (not even a ping) for this long: the peer is gone
HELLO_TIMEOUT = 5.0  # a connection must prove itself within this many seconds
MAX_STRANGERS = 256  # connections not yet proven; beyond this the oldest is dropped
SEND_TIMEOUT = 5.0
CLOSE_WAIT = 2.0  # seconds a member waits for the coordinator to close its side, once it has said all
HOLD = 3.0  # seconds a consequence failure waits for its cause (less than jobstate.SETTLE)
LOST = "the connection to the launcher on {} was lost (the host stopped or died)"


def _internal(host, error):
    return JobResult(CHANNEL, host, EXIT_INTERNAL_CHANNEL, (), "internal error in the host channel: {!r}".format(
        error))


class _Conn:
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


class Coordinator:
    """Runs on the first host: accepts every other host's launcher and relays outcomes. One thread
    serves every connection (a selector), so strangers cannot exhaust threads."""

    def __init__(self, host, hosts, addresses, bind_address, port, post, join_timeout, secret, identity,
                 ranks_per_host=None):
        self.host = host
        self._ranks_per_host = ranks_per_host  # told to every host in the challenge (None: not a Horovod job)
        self.expected = set(hosts) - {host}
        self.addresses = dict(addresses)
        self.post = post
        self._secret = secret
        self._identity = identity
        self._lock = threading.Lock()
        self._peers = {}  # host -> _Conn
        self._strangers = {}  # socket -> _Conn, not yet proven
        self._done = set()
        self._ended = False
        self._closed = False
        self._abort = None  # the abort message, once the job has failed
        self._held = None  # a consequence failure, waiting for its cause
        self._join_deadline = time.monotonic() + join_timeout
        self._join_timeout = join_timeout
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._server.bind((bind_address, port.number))
        except OSError as e:
            self._server.close()
            raise ConfigError("the launchers' channel cannot listen on port {} on {} ({}); {}".format(
                port.number, host, e.strerror or e, port.advice)) from e
        self._server.listen(128)
        self._server.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._server, selectors.EVENT_READ)
        start_thread(self._serve)

    # ---- the serving thread ---------------------------------------------------------------------

    def _serve(self):
        try:
            self._loop()
        except Exception as e:  # never a silent death: the job ends, saying why
            log.error("channel: internal error: %r", e)
            self._end(_internal(self.host, e), tell_self=True)

    def _loop(self):
        next_ping = time.monotonic() + PING_EVERY
        while not self._closed:
            now = time.monotonic()
            timeout = max(0.0, min(next_ping, self._join_deadline if self.expected - set(self._peers) else next_ping)
                          - now)
            try:
                ready = self._selector.select(timeout)
            except (OSError, ValueError):
                if self._closed:
                    return
                raise
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
                if self._closed:
                    return
                time.sleep(0.01)  # e.g. out of file descriptors: let the loop go on
                return
            sock.settimeout(SEND_TIMEOUT)  # reads only when ready; sends may wait this long
            conn = _Conn(sock, address[0], os.urandom(16).hex(), time.monotonic())
            if len(self._strangers) >= MAX_STRANGERS:
                oldest = min(self._strangers.values(), key=lambda c: c.opened)
                self._drop(oldest, "too many unproven connections; dropping the oldest")
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
                self._message(conn, message)

    def _hello(self, conn, message):
        host = message.get("host")
        claimed = host if isinstance(host, str) else None
        given = message.get("proof")
        if message.get("t") != "hello" or claimed is None or not isinstance(given, str) or \
                not is_nonce(message.get("nonce")):
            self._drop(conn, "a connection that did not introduce itself")
            return False
        if claimed not in self.expected:
            self._drop(conn, "a hello from {!r}, which is not another host of this job".format(claimed[:100]))
            return False
        if self.addresses.get(claimed) not in (None, conn.address):
            self._drop(conn, "a hello as {} from {}, which is not {}'s address".format(claimed, conn.address, claimed))
            return False
        if not verify(given, self._secret, conn.nonce, claimed, self._identity):
            why = "a hello as {} without this job's proof (every host needs the same hyperparameters.json and {})" \
                .format(claimed, CHANNEL_SECRET_ENV)
            self._drop(conn, why, tell=True)
            if is_proof(given) and self.addresses.get(claimed) == conn.address:
                # A launcher of this job's host with another configuration: the job cannot run; fail it
                # everywhere now rather than wait for that host until the join timeout. Malformed bytes, or
                # a hello from any other address, change nothing (anyone can send those).
                self._end(JobResult(CHANNEL, claimed, EXIT_HOSTS, (), "{} is configured differently: {}".format(
                    claimed, why)), tell_self=True)
            return False
        with self._lock:
            if claimed in self._peers:
                known = True
            else:
                known = False
                del self._strangers[conn.sock]
                conn.host = claimed
                self._peers[claimed] = conn
            abort = self._abort
        if known:
            self._drop(conn, "a second connection as {}".format(claimed))
            return False
        conn.send({"t": "welcome", "proof": proof(self._secret, message["nonce"], self.host, self._identity,
                                                  "welcome")})
        if abort is not None:  # the job already failed: tell a late host at once
            conn.send(abort)
            return True
        log.info("channel: %s joined (%d of %d hosts)", claimed, len(self._peers) + 1, len(self.expected) + 1)
        return True

    def _message(self, conn, message):
        kind = message["t"]
        if kind == "worker-done":
            self._worker_done(conn.host)
        elif kind == "failed":
            result = reported_result(message, "failed")
            self.fail(result._replace(host=conn.host) if result.host != conn.host else result)
        elif kind != "ping":
            log.warning("channel: ignoring a message of type %r from %s", kind[:40], conn.host)

    def _gone(self, conn):
        self._forget(conn)
        if conn.host is not None:
            with self._lock:
                finished = self._ended or len(self._done) == len(self.expected) + 1
            if not finished:
                self.fail(JobResult(LAUNCHER, conn.host, 1, (), LOST.format(conn.host)))

    def _drop(self, conn, why, tell=False):
        log.warning("channel: closed a connection from %s: %s", conn.address, why)
        if tell:  # a host of the job that got something wrong must learn why, not "connection lost"
            conn.send({"t": "refused", "why": masking.mask(why)})  # masked before the receiver cuts it
        self._forget(conn)

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
        for conn in [c for c in self._strangers.values() if now - c.opened > HELLO_TIMEOUT]:
            self._drop(conn, "no valid hello within {:.0f} s".format(HELLO_TIMEOUT))
        with self._lock:
            peers = list(self._peers.values())
        for conn in peers:
            if conn.sock.fileno() < 0:
                continue
            if now - conn.seen > SILENCE_LIMIT:
                log.warning("channel: %s has been silent for %.0f s", conn.host, now - conn.seen)
                self._forget(conn)
                self._gone(conn)
            elif not self._closed:
                conn.send({"t": "ping"})
        missing = sorted(self.expected - set(self._peers))
        if missing and now >= self._join_deadline and not self._ended:
            self.fail(JobResult(LAUNCHER, ", ".join(missing), 1, (), "the launcher on {} did not connect within "
                                                                    "{:.0f} s".format(", ".join(missing),
                                                                                      self._join_timeout)))

    # ---- the run loop's side --------------------------------------------------------------------

    def _broadcast(self, message):
        with self._lock:
            peers = list(self._peers.values())
        for conn in peers:
            conn.send(message)

    def _worker_done(self, host):
        with self._lock:
            self._done.add(host)
            complete = len(self._done) == len(self.expected) + 1
        if complete:
            log.info("channel: every worker of the job is done")
            self._broadcast({"t": "all-done"})
            self.post(Event(ALL_DONE))

    def worker_done(self):
        """Our own worker finished successfully."""
        self._worker_done(self.host)

    def fail(self, result):
        """A failure here or anywhere: tell every host once, and our own loop. A failure that is
        only a consequence of another Horovod rank's is held ``HOLD`` seconds first: the rank
        that failed for its own reason may be reported meanwhile, and then it is the cause."""
        if result.consequence:
            with self._lock:
                if self._ended or self._held is not None:
                    return
                self._held = result
            start_thread(self._release_held)
            return
        self._end(result, tell_self=result.host != self.host)

    def _release_held(self):
        time.sleep(HOLD)
        self._end(self._held, tell_self=self._held.host != self.host)

    def _end(self, result, tell_self):
        message = failure_message(result)
        message["t"] = "abort"
        with self._lock:
            if self._ended:
                return
            self._ended = True
            self._abort = message
        self._broadcast(message)
        if tell_self:
            self.post(Event(PEER_FAILED, result=result))

    def close(self, late_hosts_wait=5.0):
        """Stop listening. After a failure, first give hosts that have not joined yet a few seconds
        to connect and hear about it, rather than wait for the join timeout."""
        deadline = time.monotonic() + late_hosts_wait
        while self._abort is not None and time.monotonic() < deadline:
            with self._lock:
                missing = self.expected - set(self._peers)
            if not missing:
                break
            time.sleep(0.05)
        self._ended = True
        self._closed = True
        try:
            self._server.close()
        except OSError:
            pass


class Member:
    """Runs on every other host: one connection to the coordinator."""

    def __init__(self, host, coordinator_host, address, port, post, connect_timeout, secret, identity,
                 source_address=None):
        self.host = host
        self.post = post
        self._coordinator = coordinator_host
        self._told_consequence = False
        self._lock = threading.Lock()
        self._ended = False
        self._all_done = False
        self._sock = self._connect(coordinator_host, address, port, connect_timeout, source_address)
        self._reader = LineReader()
        self._hello(coordinator_host, secret, identity, connect_timeout)
        self._listener = start_thread(self._listen, coordinator_host)
        start_thread(self._pinger)

    @staticmethod
    def _connect(coordinator_host, address, port, timeout, source_address):
        from .backoff import attempts

        error = None
        for _waited in attempts(timeout, first=0.05, cap=1.0):  # the coordinator may still be starting
            try:
                # From this host's own address: the coordinator accepts a host only from there.
                source = (source_address, 0) if source_address else None
                return socket.create_connection((address, port), timeout=5, source_address=source)
            except OSError as e:
                error = e
                if source_address and e.errno == errno.EADDRNOTAVAIL:  # not an address of this machine
                    source_address = None
        raise HostChannelError(
            "cannot reach the launcher on {} ({}:{}) within {:.0f} s: {}".format(
                coordinator_host, address, port, timeout, error.strerror or error)) from error

    def _next_messages(self):
        try:
            data = self._sock.recv(65536)
        except socket.timeout:
            return None
        except OSError:
            data = b""
        if not data:
            raise BadMessage("the connection closed")
        return self._reader.feed(data)

    def _hello(self, coordinator_host, secret, identity, timeout):
        self._sock.settimeout(min(timeout, HELLO_TIMEOUT) or HELLO_TIMEOUT)
        try:
            messages = None
            while not messages:
                messages = self._next_messages()
                if messages is None:
                    raise BadMessage("no challenge within {:.0f} s".format(HELLO_TIMEOUT))
        except BadMessage as e:
            self._sock.close()
            raise HostChannelError("the launcher on {} did not open the job's channel: {}".format(
                coordinator_host, e)) from None
        challenge = messages.pop(0)
        nonce = challenge.get("nonce")
        if challenge.get("t") != "challenge" or not isinstance(nonce, str):
            self._sock.close()
            raise HostChannelError("the launcher on {} did not open the job's channel as expected".format(
                coordinator_host))
        self._pending = messages
        # The first host's Horovod ranks per host (None: not said), for the caller to compare.
        self.first_ranks_per_host = field(challenge, "ranks_per_host", int, None)
        self._sock.settimeout(SILENCE_LIMIT)
        self._nonce = os.urandom(16).hex()
        self._welcome = (secret, identity)  # what the coordinator's own proof must match
        _send(self._sock, self._lock, {"t": "hello", "host": self.host, "nonce": self._nonce,
                                       "proof": proof(secret, nonce, self.host, identity)})

    def _listen(self, coordinator_host):
        try:
            self._receive()
        except BadMessage as e:
            if str(e) != "the connection closed":
                log.warning("channel: from the launcher on %s: %s", coordinator_host, e)
        except Exception as e:  # never a silent death: the job ends, saying why
            log.error("channel: internal error: %r", e)
            self._ended = True
            self.post(Event(PEER_FAILED, result=_internal(self.host, e)))
            return
        if not self._ended and not self._all_done:
            self._ended = True
            self.post(Event(PEER_FAILED, result=JobResult(LAUNCHER, coordinator_host, 1, (),
                                                          LOST.format(coordinator_host))))

    def _receive(self):
        messages = self._pending
        while True:
            for message in messages:
                kind = message["t"]
                if self._welcome is not None and kind not in ("welcome", "refused"):
                    self._refuse_coordinator("sent {!r} before proving it belongs to this job (is something else "
                                             "listening on its channel port?)".format(kind[:40]))
                    return
                if kind == "welcome":
                    if self._welcome is None:
                        continue
                    secret, identity = self._welcome
                    if not verify(message.get("proof"), secret, self._nonce, self._coordinator, identity, "welcome"):
                        self._refuse_coordinator("did not prove it belongs to this job (every host needs the same "
                                                 "hyperparameters.json and {}; or something else listens on its "
                                                 "channel port)".format(CHANNEL_SECRET_ENV))
                        return
                    self._welcome = None
                elif kind == "all-done":
                    self._all_done = True
                    self.post(Event(ALL_DONE))
                elif kind == "abort":
                    self._ended = True
                    self.post(Event(PEER_FAILED, result=reported_result(message, "failed")))
                    return
                elif kind == "refused":
                    self._refuse_coordinator("refused {}: {}".format(self.host, field(message, "why", str, "")[:1000]))
                    return
            messages = self._next_messages()
            if messages is None:  # silent for SILENCE_LIMIT: the coordinator is gone
                return

    def _refuse_coordinator(self, what):
        """End the job here: the first host's launcher ``what`` (refused this host, or failed to prove
        itself), a failure of the connection between hosts (exit status 5)."""
        self._ended = True
        note = "the launcher on {} {}".format(self._coordinator, what)
        self.post(Event(PEER_FAILED, result=JobResult(CHANNEL, self.host, EXIT_HOSTS, (), note)))

    def _pinger(self):
        while not self._ended:
            if not _send(self._sock, self._lock, {"t": "ping"}):
                return
            time.sleep(PING_EVERY)

    def worker_done(self):
        _send(self._sock, self._lock, {"t": "worker-done", "host": self.host})

    def fail(self, result):
        """Tell the coordinator of a failure here: once, or a second time when the first was only
        a consequence of another rank's failure and this one is its cause."""
        if self._ended and not (self._told_consequence and not result.consequence):
            return
        self._ended = True
        self._told_consequence = result.consequence
        _send(self._sock, self._lock, failure_message(result))

    def close(self):
        """End the connection gracefully: what was sent (a failure) is read by the coordinator before
        the connection ends. Closing at once could make this host's kernel answer the coordinator's
        next message (its ``welcome``) with a reset, which may discard what the coordinator had not
        read yet. So: no more sending, then wait (briefly) for the coordinator to close its side."""
        self._ended = True
        with self._lock:
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        self._listener.join(CLOSE_WAIT)
        try:
            self._sock.close()
        except OSError:
            pass


def _send(sock, lock, message):
    with lock:
        try:
            sock.sendall(encode(message))
            return True
        except OSError:
            return False
