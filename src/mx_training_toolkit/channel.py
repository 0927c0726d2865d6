"""The launchers' own channel between hosts of one job.

ps-lite gives no signal when a process of the job dies: the other workers block forever inside
kvstore calls. So every launcher keeps a TCP connection to the launcher on the first host (the
coordinator). A failure anywhere, or a host that disappears, ends the job everywhere; and no
host finishes before every worker of the job is done.

Messages are JSON lines: ``hello``, ``worker-done``, ``failed`` and ``ping`` go to the coordinator;
``all-done``, ``abort`` and ``ping`` come back. Events for the supervisor's loop are posted with
``post(Event)``; ``Event.kind`` is ``"peer-failed"`` (``result`` names role, host and status) or
``"all-done"``.
"""

import json
import socket
import threading
import time

from .errors import ConfigError, HostChannelError
from .outcome import ALL_DONE, LAUNCHER, PEER_FAILED, Event, JobResult
from .signals import start_thread
from .log import get_logger

log = get_logger(__name__)

PING_EVERY = 1.0
SILENCE_LIMIT = 15.0  # no message (not even a ping) for this long: the peer is gone


def check_port_free(port, host):
    """ps-lite's scheduler binds every interface at _ps_port: fail clearly if that port is taken."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as zmq does: TIME_WAIT is no conflict
    try:
        probe.bind(("", port))
    except OSError as e:
        raise ConfigError(
            "port {} on {} is already in use, so the scheduler cannot start ({}); choose another with "
            "the hyperparameter _ps_port (hyperparameters.json field '_ps_port')".format(
                port, host, e.strerror or e)) from e
    finally:
        probe.close()


def _send(sock, lock, message):
    data = (json.dumps(message) + "\n").encode()
    with lock:
        try:
            sock.sendall(data)
            return True
        except OSError:
            return False


def _lines(sock):
    """Yield decoded messages from ``sock`` until it closes or stays silent too long."""
    sock.settimeout(SILENCE_LIMIT)
    buf = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                message = json.loads(line)
            except ValueError:
                message = None
            if isinstance(message, dict):
                yield message
            else:
                log.warning("channel: ignoring a malformed message")


def _field(message, key, kind, default):
    value = message.get(key, default)
    return value if isinstance(value, kind) and not isinstance(value, bool) else default


def _result(message, note):
    """A failure another host reported -> its ``JobResult`` (fields of the wrong type get defaults)."""
    tail = _field(message, "tail", list, [])
    return JobResult(_field(message, "role", str, LAUNCHER), _field(message, "host", str, "?"),
                     _field(message, "status", int, 1) & 0xFF or 1, tuple(str(line) for line in tail[-20:]),
                     _field(message, "note", str, note), _field(message, "signal", int, 0),
                     _field(message, "reason", str, ""))


def _failure_message(result):
    return {"t": "failed", "host": result.host, "role": result.role, "status": result.status,
            "note": result.note, "tail": list(result.stderr_tail)[-20:], "signal": result.signal,
            "reason": result.reason}


class Coordinator:
    """Runs on the first host: accepts every other host's launcher and relays outcomes."""

    def __init__(self, host, hosts, bind_address, port, post, join_timeout):
        self.host = host
        self.expected = set(hosts) - {host}
        self.post = post
        self._lock = threading.Lock()
        self._peers = {}  # host -> (socket, send lock)
        self._done = set()
        self._ended = False
        self._abort = None  # the abort message, once the job has failed
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._server.bind((bind_address, port))
        except OSError as e:
            self._server.close()
            raise ConfigError(
                "the launchers' channel cannot listen on port {} on {} ({}); the port is _ps_port + 1 "
                "(hyperparameters.json field '_ps_port')".format(port, host, e.strerror or e)) from e
        self._server.listen(64)
        start_thread(self._accept)
        start_thread(self._pinger)
        start_thread(self._check_joined, join_timeout)

    def _check_joined(self, waited):
        time.sleep(waited)
        with self._lock:
            missing = sorted(self.expected - set(self._peers))
        if missing:
            self.fail(JobResult(LAUNCHER, ", ".join(missing), 1, (),
                                "the launcher on {} did not connect within {:.0f} s".format(", ".join(missing), waited)))

    def _accept(self):
        while True:
            try:
                sock, _addr = self._server.accept()
            except OSError:
                return
            start_thread(self._serve, sock)

    def _serve(self, sock):
        messages = _lines(sock)
        hello = next(messages, None)
        peer = hello.get("host") if hello and hello.get("t") == "hello" else None
        lock = threading.Lock()
        with self._lock:
            known = peer in self.expected and peer not in self._peers
            if known:
                self._peers[peer] = (sock, lock)
            abort = self._abort
        if not known:  # a port scan, a health check, a stray or repeated client: not part of the job
            sock.close()
            return
        if abort is not None:  # the job already failed: tell a late host at once
            _send(sock, lock, abort)
            return
        log.info("channel: %s joined (%d of %d hosts)", peer, len(self._peers) + 1, len(self.expected) + 1)
        for message in messages:
            kind = message.get("t")
            if kind == "worker-done":
                self._worker_done(peer)
            elif kind == "failed":
                self.fail(_result(message, "failed"))
        with self._lock:
            finished = self._ended or len(self._done) == len(self.expected) + 1
        if not finished:
            self.fail(JobResult(LAUNCHER, peer, 1, (),
                                "the connection to the launcher on {} was lost (the host stopped or died)".format(peer)))

    def _pinger(self):
        while not self._ended:
            self._broadcast({"t": "ping"})
            time.sleep(PING_EVERY)

    def _broadcast(self, message):
        with self._lock:
            peers = list(self._peers.values())
        for sock, lock in peers:
            _send(sock, lock, message)

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
        """A failure here or anywhere: tell every host once, and our own loop."""
        message = _failure_message(result)
        message["t"] = "abort"
        with self._lock:
            if self._ended:
                return
            self._ended = True
            self._abort = message
        self._broadcast(message)
        if result.host != self.host:
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
        try:
            self._server.close()
        except OSError:
            pass


class Member:
    """Runs on every other host: one connection to the coordinator."""

    def __init__(self, host, coordinator_host, address, port, post, connect_timeout):
        self.host = host
        self.post = post
        self._lock = threading.Lock()
        self._ended = False
        self._all_done = False
        self._sock = self._connect(coordinator_host, address, port, connect_timeout)
        _send(self._sock, self._lock, {"t": "hello", "host": host})
        start_thread(self._listen, coordinator_host)
        start_thread(self._pinger)

    @staticmethod
    def _connect(coordinator_host, address, port, timeout):
        from .backoff import attempts

        error = None
        for _waited in attempts(timeout, first=0.05, cap=1.0):  # the coordinator may still be starting
            try:
                return socket.create_connection((address, port), timeout=5)
            except OSError as e:
                error = e
        raise HostChannelError(
            "cannot reach the launcher on {} ({}:{}) within {:.0f} s: {}".format(
                coordinator_host, address, port, timeout, error.strerror or error)) from error

    def _listen(self, coordinator_host):
        for message in _lines(self._sock):
            kind = message.get("t")
            if kind == "all-done":
                self._all_done = True
                self.post(Event(ALL_DONE))
            elif kind == "abort":
                self._ended = True
                self.post(Event(PEER_FAILED, result=_result(message, "failed")))
                return
        if not self._ended and not self._all_done:
            self._ended = True
            self.post(Event(PEER_FAILED, result=JobResult(
                "launcher", coordinator_host, 1, (),
                "the connection to the launcher on {} was lost (the host stopped or died)".format(coordinator_host))))

    def _pinger(self):
        while not self._ended:
            if not _send(self._sock, self._lock, {"t": "ping"}):
                return
            time.sleep(PING_EVERY)

    def worker_done(self):
        _send(self._sock, self._lock, {"t": "worker-done", "host": self.host})

    def fail(self, result):
        if self._ended:
            return
        self._ended = True
        _send(self._sock, self._lock, _failure_message(result))

    def close(self):
        self._ended = True
        try:
            self._sock.close()
        except OSError:
            pass
