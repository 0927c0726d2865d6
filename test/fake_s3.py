"""S3 stand-ins shared by the unit and integration tests: credentials that keep boto3 off this
machine's AWS set-up, and an endpoint that never answers.

``test/`` is on ``sys.path`` while pytest runs (it holds ``conftest.py``), so tests in both
``test/unit`` and ``test/integration`` import this as ``from fake_s3 import ...``.
"""

import os
import select
import socket
import time

from fakes import LoopbackServer

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # nothing from this machine's AWS set-up, and no instance-metadata lookups
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1",
}


class SilentEndpoint(LoopbackServer):
    """A loopback socket that accepts TCP connections and never reads or answers them."""

    def wait_for_a_connection(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.connections and time.monotonic() < deadline:
            time.sleep(0.02)
        return bool(self.connections)

    def wait_for_a_request(self, timeout):
        """Whether a request's first bytes arrive on a connection within ``timeout`` seconds (they
        are left unread): the client is then waiting for a reply that never comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = select.select(list(self.connections), [], [], 0.02)[0] if self.connections else ()
            if any(conn.recv(1, socket.MSG_PEEK) for conn in ready):
                return True
            if not self.connections:
                time.sleep(0.02)
        return False
