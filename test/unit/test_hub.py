"""The first host's socket layer (``hub``) on real loopback sockets, with a listener that records
what it is told: challenge, hello, welcome, drops, and what reaches the relay."""

import json
import queue
import socket

import pytest

from mx_training_toolkit import hub
from mx_training_toolkit.messages import MAX_MESSAGE, proof, verify
from mx_training_toolkit.ports import Port, channel_port

SECRET = b"k" * 32
IDENTITY = '["job",["algo-1","algo-2","algo-3"],9000]'
HOSTS = ("algo-1", "algo-2", "algo-3")
ANY_PORT = Port(0, "the launchers' channel", "_ps_port + 1")  # the system picks one
ADDRESSES = {"algo-1": "127.0.0.1", "algo-2": "127.0.0.2", "algo-3": "127.0.0.3"}


class Listener:
    """What the hub tells the relay, as ``(kind, ...)`` items on a queue; ``news`` goes to a joiner."""

    def __init__(self, news=None):
        self.told = queue.Queue()
        self.news = news

    def joined(self, host):
        self.told.put(("joined", host))
        return self.news

    def received(self, host, message):
        self.told.put(("received", host, message["t"]))

    def gone(self, host):
        self.told.put(("gone", host))

    def failed(self, result):
        self.told.put(("failed", result.role, result.host, result.status, result.note))

    def next(self, timeout=10):
        return self.told.get(timeout=timeout)


@pytest.fixture
def served():
    made = []

    def make(listener=None, join_timeout=60.0, ranks_per_host=None):
        listener = listener or Listener()
        h = hub.Hub("algo-1", HOSTS, ADDRESSES, "", ANY_PORT, SECRET, IDENTITY, join_timeout, listener,
                    ranks_per_host).start()
        made.append(h)
        return h, listener

    yield make
    for h in made:
        h.close()


class Peer:
    """A connection to the hub from ``source`` (a loopback address), reading JSON lines."""

    def __init__(self, port, source="127.0.0.2"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
        self.file = self.sock.makefile("rb")

    def read(self):
        line = self.file.readline()
        return json.loads(line) if line else None

    def send(self, message):
        self.sock.sendall(json.dumps(message).encode() + b"\n")

    def hello(self, host="algo-2", secret=SECRET):
        challenge = self.read()
        nonce = "ab" * 16
        self.send({"t": "hello", "host": host, "nonce": nonce, "proof": proof(secret, challenge["nonce"], host,
                                                                                IDENTITY)})
        return challenge, nonce

    def close(self):
        self.file.close()
        self.sock.close()


def test_a_host_that_proves_itself_is_welcomed_with_the_first_hosts_own_proof(served):
    h, listener = served(ranks_per_host=2)
    peer = Peer(h.port)
    challenge, nonce = peer.hello()
    assert challenge["t"] == "challenge" and challenge["ranks_per_host"] == 2 and len(challenge["nonce"]) == 32
    welcome = peer.read()
    assert welcome["t"] == "welcome" and verify(welcome["proof"], SECRET, nonce, "algo-1", IDENTITY, "welcome")
    assert not verify(welcome["proof"], SECRET, nonce, "algo-1", IDENTITY)  # not usable as a hello
    assert listener.next() == ("joined", "algo-2")
    peer.send({"t": "worker-done"})
    assert listener.next() == ("received", "algo-2", "worker-done")
    h.broadcast({"t": "all-done"})
    assert peer.read() == {"t": "all-done"}
    assert h.missing() == {"algo-3"}
    peer.close()
    assert listener.next() == ("gone", "algo-2")


def test_news_for_a_late_host_follows_the_welcome(served):
    h, _listener = served(Listener(news={"t": "abort", "host": "algo-3"}))
    peer = Peer(h.port)
    peer.hello()
    assert [peer.read()["t"], peer.read()] == ["welcome", {"t": "abort", "host": "algo-3"}]


def test_a_wrong_proof_from_the_hosts_own_address_is_refused_and_fails_the_job(served):
    h, listener = served()
    peer = Peer(h.port)
    peer.hello(secret=b"other" * 8)
    refused = peer.read()
    assert refused["t"] == "refused" and "without this job's proof" in refused["why"]
    assert peer.read() is None  # closed
    kind, role, host, status, note = listener.next()
    assert (kind, role, host, status) == ("failed", "channel", "algo-2", 5)
    assert note.startswith("algo-2 is configured differently: a hello as algo-2 without this job's proof")


@pytest.mark.parametrize("source,hello", [
    ("127.0.0.3", {"t": "hello", "host": "algo-2"}),  # another host's address
    ("127.0.0.2", {"t": "hello", "host": "algo-1"}),  # the first host is not a peer
    ("127.0.0.2", {"t": "hello", "host": "algo-9"}),  # not a host of the job
    ("127.0.0.2", {"t": "ping"}),  # no hello
    ("127.0.0.2", {"t": "hello", "host": "algo-2", "proof": "zz" * 32}),  # a proof of another shape
])
def test_a_hello_that_proves_nothing_closes_that_connection_and_nothing_else(served, source, hello):
    h, listener = served()
    peer = Peer(h.port, source)
    challenge = peer.read()
    hello.setdefault("nonce", "cd" * 16)
    hello.setdefault("proof", proof(SECRET, challenge["nonce"], hello.get("host", "x"), IDENTITY))
    peer.send(hello)
    while peer.read() is not None:  # a wrong proof is told why ("refused"), then closed
        pass
    good = Peer(h.port)  # the hub still serves
    good.hello()
    assert good.read()["t"] == "welcome"
    assert listener.next() == ("joined", "algo-2")  # and the bad one told the relay nothing


def test_an_oversized_message_closes_the_connection(served):
    h, listener = served()
    peer = Peer(h.port)
    peer.hello()
    peer.read()
    assert listener.next() == ("joined", "algo-2")
    peer.sock.sendall(b"x" * (MAX_MESSAGE + 10))
    assert peer.read() is None
    assert listener.next() == ("gone", "algo-2")


def test_a_second_connection_as_the_same_host_is_dropped(served):
    h, listener = served()
    first = Peer(h.port)
    first.hello()
    assert first.read()["t"] == "welcome"
    second = Peer(h.port)
    second.hello()
    assert second.read()["t"] == "welcome" and second.read() is None
    assert listener.next() == ("joined", "algo-2")
    first.send({"t": "ping"})
    assert listener.next() == ("received", "algo-2", "ping")


def test_hosts_that_never_join_are_reported_once(served):
    h, listener = served(join_timeout=0.2)
    peer = Peer(h.port)
    peer.hello()
    assert listener.next() == ("joined", "algo-2")
    kind, role, host, status, note = listener.next()
    assert (kind, role, host, status, note) == ("failed", "launcher", "algo-3", 1,
                                                "the launcher on algo-3 did not connect within 0 s")
    with pytest.raises(queue.Empty):
        listener.next(timeout=hub.PING_EVERY * 1.5)


def test_a_port_in_use_is_a_configuration_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        number = taken.getsockname()[1]
        with pytest.raises(Exception, match=r"the launchers' channel cannot listen on port {} on algo-1 \(.*\); "
                           r"the port is _ps_port \+ 1: choose another _ps_port".format(number)):
            hub.Hub("algo-1", HOSTS, ADDRESSES, "127.0.0.1", channel_port(number - 1), SECRET, IDENTITY, 1.0,
                    Listener())


def test_a_flood_of_unproven_connections_is_logged_ten_lines_a_window_then_counted(served, monkeypatch):
    import io
    import re
    import time

    from mx_training_toolkit import log

    monkeypatch.setattr(hub, "DROP_LOG_WINDOW", 3.0)
    out = io.StringIO()
    log.set_stream(out)
    try:
        h, listener = served()
        for _ in range(25):  # each says something that is not a hello: closed at once
            peer = Peer(h.port, "127.0.0.9")
            peer.read()
            peer.send({"t": "nonsense"})
            assert peer.read() is None
            peer.close()
        deadline = time.monotonic() + 30  # the window ends at the hub's next look (once a second)
        while "more unproven connections" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        log.set_stream(None)
    lines = out.getvalue().splitlines()
    closed = [line for line in lines if "channel: closed a connection from 127.0.0.9" in line]
    summary = [line for line in lines if "more unproven connections" in line]
    assert len(closed) == hub.DROP_LOG_LINES
    assert len(summary) == 1 and re.search(r"closed 15 more unproven connections in \d+ s \(the first 10 of every 3 s "
                                           r"are logged one by one\)$", summary[0]), summary
    good = Peer(h.port)  # and the hub serves hosts as before
    good.hello()
    assert good.read()["t"] == "welcome"
