"""Fakes shared by the tests: a clock, and a loopback server to build stand-ins on (``test/`` is on
sys.path during pytest runs; ``fake_s3`` and ``fake_index`` build on this module too)."""

import socket
import threading


class FakeClock:
    """A clock that moves only when slept on or when a test moves it: ``clock()`` (or the
    instance itself, called) reads it, ``sleep(s)`` records the pause and moves it."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class LoopbackServer:
    """A TCP server on a free port of 127.0.0.1 (``port``, ``url``). A daemon thread accepts every
    connection, keeps it in ``connections`` and runs ``serve(conn)`` for it in a thread of its own;
    ``serve`` does nothing here, so a connection stays open, unread and unanswered. ``close()`` (also
    on leaving a ``with`` block) closes the socket and every connection."""

    def __init__(self, backlog=16):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:{}".format(self.port)
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        """Override to answer ``conn``."""

    def close(self):
        try:
            # (on Linux, close() alone does not wake the thread blocked in accept())
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for conn in self.connections:
            conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
