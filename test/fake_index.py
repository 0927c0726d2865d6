"""Local stand-ins for what pip and CodeArtifact talk to, on loopback only: a package index (the
simple API, optional Basic authentication), the two CodeArtifact calls pip's configuration needs,
and a server that accepts connections and never answers. Plus ``make_wheel``, a real wheel of a
one-module package written with zipfile (no build tools)."""

import base64
import hashlib
import json
import os
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from fakes import LoopbackServer


def make_wheel(directory, name, version, source):
    """Write ``NAME-VERSION-py3-none-any.whl`` holding module ``NAME`` (``source``) -> its path."""
    module = name.replace("-", "_")
    dist_info = "{}-{}.dist-info".format(module, version)
    files = {
        module + ".py": source.encode(),
        dist_info + "/METADATA": "Metadata-Version: 2.1\nName: {}\nVersion: {}\n".format(name, version).encode(),
        dist_info + "/WHEEL": b"Wheel-Version: 1.0\nGenerator: fake_index\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("{},sha256={},{}".format(path, digest, len(data)))
    record.append(dist_info + "/RECORD,,")
    files[dist_info + "/RECORD"] = ("\n".join(record) + "\n").encode()
    path = os.path.join(str(directory), "{}-{}-py3-none-any.whl".format(module, version))
    with zipfile.ZipFile(path, "w") as wheel:
        for name_in, data in files.items():
            wheel.writestr(name_in, data)
    return path


class _Server:
    def __init__(self, handler):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.owner = self
        self.requests = []  # (method, path, Authorization header)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.httpd.server_address[1]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body, content_type="text/html", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class IndexServer(_Server):
    """A package index at ``http://127.0.0.1:PORT/PREFIX/simple/`` serving the wheels in
    ``directory``; with ``user``/``password`` every request must carry them (else 401)."""

    def __init__(self, directory, prefix="pypi/repo", user=None, password=None):
        self.directory = str(directory)
        self.prefix = "/" + prefix.strip("/") + "/"
        self.auth = None if user is None else "Basic " + base64.b64encode(
            "{}:{}".format(user, password).encode()).decode()
        super().__init__(_IndexHandler)

    def url(self, credentials=""):
        return "http://{}127.0.0.1:{}{}simple/".format(credentials + "@" if credentials else "", self.port,
                                                       self.prefix)


class _IndexHandler(_Handler):
    def do_GET(self):
        server = self.server.owner
        server.requests.append(("GET", self.path, self.headers.get("Authorization")))
        if server.auth and self.headers.get("Authorization") != server.auth:
            return self.send(401, "no", headers=(("WWW-Authenticate", 'Basic realm="index"'),))
        path = urlsplit(self.path).path
        if not path.startswith(server.prefix):
            return self.send(404, "not here")
        rest = path[len(server.prefix):]
        wheels = sorted(n for n in os.listdir(server.directory) if n.endswith(".whl"))
        if rest.startswith("simple/"):
            project = rest[len("simple/"):].strip("/")
            links = ['<a href="{}files/{}">{}</a>'.format(server.prefix, n, n) for n in wheels
                     if not project or n.split("-")[0].lower().replace("_", "-") == project.lower().replace("_", "-")]
            if project and not links:
                return self.send(404, "no such project")
            return self.send(200, "<html><body>{}</body></html>".format("\n".join(links)))
        if rest.startswith("files/") and rest[len("files/"):] in wheels:
            with open(os.path.join(server.directory, rest[len("files/"):]), "rb") as f:
                return self.send(200, f.read(), "application/octet-stream")
        return self.send(404, "not here")


class CodeArtifactServer(_Server):
    """The two CodeArtifact calls (botocore's REST-JSON model): ``POST /v1/authorization-token``
    and ``GET /v1/repository/endpoint``. ``endpoint``: the repositoryEndpoint it answers;
    ``error``: answer every call with this AWS error code (403) instead."""

    def __init__(self, token, endpoint, error=None):
        self.token, self.endpoint, self.error = token, endpoint, error
        self.calls = []  # (path, query as a dict of single values)
        super().__init__(_CodeArtifactHandler)

    @property
    def url(self):
        return "http://127.0.0.1:{}".format(self.port)


class _CodeArtifactHandler(_Handler):
    def _answer(self):
        server = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        server.calls.append((self.command + " " + parts.path, query))
        if server.error:
            return self.send(403, json.dumps({"message": "fake denial"}), "application/json",
                             (("x-amzn-ErrorType", server.error),))
        if self.command == "POST" and parts.path == "/v1/authorization-token":
            return self.send(200, json.dumps({"authorizationToken": server.token, "expiration": 1.7e9}),
                             "application/json")
        if self.command == "GET" and parts.path == "/v1/repository/endpoint":
            return self.send(200, json.dumps({"repositoryEndpoint": server.endpoint}), "application/json")
        return self.send(404, json.dumps({"message": "unknown"}), "application/json")

    do_GET = do_POST = _answer


class SilentServer(LoopbackServer):
    """Accepts connections on loopback and never answers; keeps them (``connections``)."""

    def __init__(self):
        super().__init__(backlog=64)
