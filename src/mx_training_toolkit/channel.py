"""The launchers' own channel between hosts of one job.

ps-lite gives no signal when a process of the job dies: the other workers block forever inside
kvstore calls. So every launcher keeps a TCP connection to the launcher on the first host (the
coordinator). A failure anywhere, or a host that disappears, ends the job everywhere; and no
host finishes before every worker of the job is done.

Three layers on the first host: ``hub`` (the sockets: accept, challenge, hello, ping, drop),
``relay`` (what hosts say to the job's rules, their verdict to every host) and ``jobrules`` (pure:
done-counting and the root cause). ``Coordinator`` puts them together; ``Member`` is every other
host's one connection to it.

Messages are JSON lines of at most ``messages.MAX_MESSAGE`` bytes. The coordinator opens with
``challenge`` (a random nonce; for a Horovod job also ``ranks_per_host``, the first host's count,
which every other host compares with its own once it has joined); a host answers ``hello`` with its
name, a nonce of its own and a proof (an HMAC of the nonce, its name and the job's identity, keyed
with the job's secret, see ``messages.job_secret``); the coordinator answers ``welcome`` with its
own proof over the host's nonce, and a host takes no other message from a first host that has not
proven itself (something that took the first host's address first cannot answer ``all-done``); then
``worker-done``, ``failed`` (with the failure's age) and ``ping`` (for the stall watchdog, with
the seconds this host's workers have been idle) go to the coordinator, and
``all-done``, ``abort`` (the root cause and the other failures) and ``ping`` come back. A peer is
accepted as host H only from H's address and with a valid proof.

Threat model. This stops anything on the network that does not hold the job's configuration: port
scanners, health checks, other jobs, a hostile container on the same network. They cannot join as
a host, end the job, make it succeed, crash or stall the coordinator (see ``hub``). It does not
stop someone who can read the job's hyperparameters (the key is derived from them, unless
``MX_TRAINING_CHANNEL_SECRET`` gives one), nor an attacker on the path between two hosts who can
inject into an established connection: messages after the hello are not signed or encrypted.

Events for the run loop are posted with ``post(Event)``: ``PEER_FAILED`` (``result`` names role,
host and status; ``others``, the other failures) or ``ALL_DONE``.
"""

import errno
import os
import socket
import threading
import time

from .errors import EXIT_HOSTS, HostChannelError
from .hub import HELLO_TIMEOUT, PING_EVERY, SILENCE_LIMIT, Hub, internal_error
from .log import get_logger
from .messages import (BadMessage, LineReader, encode, failure_message, field, proof,
                       reported_verdict, verify)
from .names import CHANNEL_SECRET_ENV
from .outcome import ALL_DONE, CHANNEL, LAUNCHER, PEER_FAILED, Event, JobResult
from .relay import LOST, Relay
from .signals import start_thread

log = get_logger(__name__)

CLOSE_WAIT = 2.0  # seconds a member waits for the coordinator to close its side, once it has said all


class Coordinator:
    """Runs on the first host: the hub serves the other hosts' launchers, the relay keeps the job's
    rules. This host's run loop calls ``worker_done``, ``fail`` and, at ``deadline``, ``tick``; each
    returns the events a verdict it caused means for this host."""

    def __init__(self, host, hosts, addresses, bind_address, port, post, join_timeout, secret, identity,
                 ranks_per_host=None, stall=None, idle=None):
        self.host = host
        self.relay = Relay(host, hosts, post, stall=stall, idle=idle)
        self._hub = Hub(host, hosts, addresses, bind_address, port, secret, identity, join_timeout, self.relay,
                        ranks_per_host)
        self.relay.send_all = self._hub.broadcast
        self._hub.start()

    @property
    def port(self):
        return self._hub.port

    @property
    def deadline(self):
        return self.relay.deadline

    def tick(self):
        return self.relay.tick()

    def worker_done(self):
        """Our own workers finished successfully."""
        return self.relay.worker_done()

    def fail(self, result, at=None):
        """A failure here (at ``at``, default now): the job's rules decide, every host is told."""
        return self.relay.fail(result, at)

    def close(self, late_hosts_wait=5.0):
        """Stop listening. After a failure, first give hosts that have not joined yet a few seconds
        to connect and hear about it, rather than wait for the join timeout."""
        deadline = time.monotonic() + late_hosts_wait
        while self.relay.abort is not None and time.monotonic() < deadline and self._hub.missing():
            time.sleep(0.05)
        self._hub.close()


class Member:
    """Runs on every other host: one connection to the coordinator."""

    def __init__(self, host, coordinator_host, address, port, post, connect_timeout, secret, identity,
                 source_address=None, idle=None):
        self.host = host
        self.post = post
        self.idle = idle  # for the stall watchdog: this host's workers' idle seconds, sent with each ping
        self._coordinator = coordinator_host
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
            self.post(Event(PEER_FAILED, result=internal_error(self.host, e)))
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
                    root, others = reported_verdict(message)
                    self.post(Event(PEER_FAILED, result=root, others=others))
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
            ping = {"t": "ping"} if self.idle is None else {"t": "ping", "idle": round(self.idle(), 3)}
            if not _send(self._sock, self._lock, ping):
                return
            time.sleep(PING_EVERY)

    deadline = None  # the first host keeps the job's rules and their timer: nothing to time here

    def tick(self):
        return []

    def worker_done(self):
        _send(self._sock, self._lock, {"t": "worker-done", "host": self.host})
        return []

    def fail(self, result, at=None):
        """Tell the coordinator of a failure here that happened at ``at`` (default now), as its age:
        each consequence of another Horovod rank's failure, until a failure of this host's own (or
        the job's end) has been told. The verdict comes back as an ``abort``."""
        if self._ended:
            return []
        self._ended = not result.consequence
        _send(self._sock, self._lock, failure_message(result, 0.0 if at is None else time.monotonic() - at))
        return []

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
