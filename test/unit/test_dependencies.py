"""dependencies: which pip commands, from which index, and the index's reachability."""

import socket

import pytest

from mx_training_toolkit import dependencies as deps
from mx_training_toolkit.user_code import UserCode
from mx_training_toolkit.errors import PipInstallError
from mx_training_toolkit.masking import mask, mask_url
from mx_training_toolkit.outcome import JobResult

PY = "/venv/bin/python"
PIP = (PY, "-I", "-m", "pip", "install", "--disable-pip-version-check")
ARN = "arn:aws:codeartifact:eu-west-1:123456789012:repository/my-domain/my-repo"


def user_code(requirements, package):
    return UserCode("script", "t.py", requirements=requirements, is_package=package)


class Pip:
    """Stands for the job's loop: records each pip command, exits with the next given status."""

    def __init__(self, *statuses):
        self.statuses = list(statuses)
        self.calls = []

    def __call__(self, argv, env, fatal):
        self.calls.append((argv, env, fatal))
        status = self.statuses.pop(0)
        if status is None:
            return None
        if status and fatal:
            raise PipInstallError("pip failed")
        return JobResult("pip", "algo-1", status)


NO_INDEX = deps.Index(None, "test")


@pytest.mark.parametrize("requirements, package, wheelhouse, statuses, expected", [
    (True, False, False, [0], [(PIP + ("--no-index", "-r", "requirements.txt"), {}, False)]),
    (False, True, False, [0], [(PIP + ("--no-index", "--no-build-isolation", "."), {}, False)]),
    (True, True, False, [1, 0, 0],
     [(PIP + ("--no-index", "-r", "requirements.txt"), {}, False), (PIP + ("-r", "requirements.txt"), {}, True),
      (PIP + ("--no-index", "--no-build-isolation", "."), {}, False)]),
    (True, True, False, [0, 1, 0],
     [(PIP + ("--no-index", "-r", "requirements.txt"), {}, False),
      (PIP + ("--no-index", "--no-build-isolation", "."), {}, False), (PIP + (".",), {}, True)]),
    (True, True, True, [0, 0],
     [(PIP + ("--no-index", "--find-links", "WH", "-r", "requirements.txt"), {}, True),
      (PIP + ("--no-index", "--find-links", "WH", "--no-build-isolation", "."), {}, True)]),
    # Stopped during the first command: nothing more runs.
    (True, True, False, [None], [(PIP + ("--no-index", "-r", "requirements.txt"), {}, False)]),
    (True, True, True, [None], [(PIP + ("--no-index", "--find-links", "WH", "-r", "requirements.txt"), {}, True)]),
])
def test_install_runs_offline_first_and_the_index_only_for_what_is_missing(
        tmp_path, requirements, package, wheelhouse, statuses, expected):
    if wheelhouse:
        (tmp_path / "wheelhouse").mkdir()
    pip = Pip(*statuses)
    deps.install(user_code(requirements, package), str(tmp_path), {}, pip, python=PY, index=NO_INDEX)
    wh = str(tmp_path / "wheelhouse")
    assert pip.calls == [(tuple(wh if a == "WH" else a for a in argv), env, fatal) for argv, env, fatal in expected]


def test_a_failing_wheelhouse_install_never_tries_the_index(tmp_path):
    (tmp_path / "wheelhouse").mkdir()
    pip = Pip(1)
    with pytest.raises(PipInstallError):
        deps.install(user_code(True, False), str(tmp_path), {}, pip, python=PY, index=NO_INDEX)
    assert len(pip.calls) == 1


def test_the_codeartifact_index_goes_to_pip_through_its_environment(tmp_path):
    url = "https://aws:tok@host/pypi/repo/simple/"
    index = deps.Index(url, "CA", ((deps.PIP_INDEX_ENV, url),))
    pip = Pip(1, 0)
    deps.install(user_code(True, False), str(tmp_path), {}, pip, python=PY, index=index._replace(url=None))
    assert pip.calls[1] == (PIP + ("-r", "requirements.txt"), {deps.PIP_INDEX_ENV: url}, True)
    assert not any("tok" in arg for argv, _env, _fatal in pip.calls for arg in argv)


@pytest.mark.parametrize("environ, lines, expected", [
    ({}, [], deps.Index(deps.pip_default_index(), "pip's default")),
    ({}, ["global.index-url='https://g/simple'"], deps.Index("https://g/simple", "pip's configuration: global.index-url")),
    ({}, ["global.index-url='https://g/simple'", "install.index-url='https://i/simple'"],
     deps.Index("https://i/simple", "pip's configuration: install.index-url")),
    ({}, ["global.index-url='https://g/simple'", ":env:.index-url='https://e/simple'"],
     deps.Index("https://e/simple", "PIP_INDEX_URL")),
    ({}, [":env:.no-index='1'", ":env:.index-url='https://e/simple'"], deps.Index(None, "pip's configuration: no-index")),
    ({}, ["global.no-index='true'"], deps.Index(None, "pip's configuration: no-index")),
    ({}, ["global.no-index='false'", "global.index-url='https://g/simple'"],
     deps.Index("https://g/simple", "pip's configuration: global.index-url")),
    ({}, ["global.extra-index-url='https://x/simple https://y/simple'", ":env:.index-url='https://e/simple'"],
     deps.Index("https://e/simple", "PIP_INDEX_URL", extras=("https://x/simple", "https://y/simple"))),
])
def test_the_index_is_the_one_pip_would_use(environ, lines, expected):
    assert deps.find_index(environ, PY, config_lines=lines) == expected


def test_pip_config_is_read_from_pip_itself():
    import sys

    lines = deps.pip_config({"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_CONFIG_FILE": "/dev/null"},
                            sys.executable)
    assert deps.find_index({}, sys.executable, lines) == deps.Index("http://127.0.0.1:9/simple", "PIP_INDEX_URL")


@pytest.mark.parametrize("arn, parts", [
    (ARN, {"partition": "aws", "region": "eu-west-1", "account": "123456789012", "domain": "my-domain",
           "repository": "my-repo"}),
    ("arn:aws-cn:codeartifact:cn-north-1:1:repository/d/r/with/slash",
     {"partition": "aws-cn", "region": "cn-north-1", "account": "1", "domain": "d", "repository": "r/with/slash"}),
])
def test_parse_arn(arn, parts):
    assert deps.parse_arn(arn) == parts


@pytest.mark.parametrize("arn", ["", "arn:aws:s3:::bucket", "arn:aws:codeartifact:r:1:domain/d",
                                 "arn:aws:codeartifact:r:1:repository/d/"])
def test_a_bad_arn_fails_configuring_codeartifact(arn):
    with pytest.raises(PipInstallError) as info:
        deps.parse_arn(arn)
    assert str(info.value) == ("failed to configure pip to use codeartifact: CA_REPOSITORY_ARN={!r} is not a "
                               "CodeArtifact repository ARN (arn:PARTITION:codeartifact:REGION:ACCOUNT:repository/"
                               "DOMAIN/REPOSITORY)".format(arn))


@pytest.mark.parametrize("endpoint, url", [
    ("https://d-1.d.codeartifact.r.amazonaws.com/pypi/my-repo/",
     "https://aws:TOKEN@d-1.d.codeartifact.r.amazonaws.com/pypi/my-repo/simple/"),
    ("http://127.0.0.1:5000/pypi/my-repo/", "http://aws:TOKEN@127.0.0.1:5000/pypi/my-repo/simple/"),
    ("https://h/pypi/other/", "https://aws:TOKEN@h/pypi/other/"),
])
def test_codeartifact_url(endpoint, url):
    assert deps.codeartifact_url(endpoint, "my-repo", "TOKEN") == url


class FakeCodeArtifact:
    def __init__(self, fail=None):
        self.fail = fail
        self.calls = []

    def get_authorization_token(self, **kwargs):
        self.calls.append(("token", kwargs))
        if self.fail:
            raise self.fail
        return {"authorizationToken": "sekrit-token", "expiration": 0}

    def get_repository_endpoint(self, **kwargs):
        self.calls.append(("endpoint", kwargs))
        return {"repositoryEndpoint": "https://my-domain-123456789012.d.codeartifact.eu-west-1.amazonaws.com/pypi/my-repo/"}


def test_codeartifact_index_asks_for_the_token_and_the_endpoint():
    client = FakeCodeArtifact()
    url = deps.codeartifact_index(ARN, client)
    assert url == "https://aws:sekrit-token@my-domain-123456789012.d.codeartifact.eu-west-1.amazonaws.com/pypi/my-repo/simple/"
    assert client.calls == [("token", {"domain": "my-domain", "domainOwner": "123456789012"}),
                            ("endpoint", {"domain": "my-domain", "domainOwner": "123456789012",
                                          "repository": "my-repo", "format": "pypi"})]


def test_any_codeartifact_error_fails_configuring_it():
    with pytest.raises(PipInstallError) as info:
        deps.codeartifact_index(ARN, FakeCodeArtifact(fail=RuntimeError("access denied")))
    assert str(info.value) == ("failed to configure pip to use codeartifact (CA_REPOSITORY_ARN={}): "
                               "RuntimeError: access denied".format(ARN))


@pytest.mark.parametrize("text, masked", [
    ("https://aws:tok3n@h/pypi/r/simple/", "https://aws:****@h/pypi/r/simple/"),
    ("index http://user:p%40ss@127.0.0.1:80/simple and https://tokenonly@h/x",
     "index http://user:****@127.0.0.1:80/simple and https://****@h/x"),
    ("https://h/simple/ user@example.com", "https://h/simple/ user@example.com"),
    ("no url here", "no url here"),
])
def test_url_credentials_are_masked(text, masked):
    assert mask_url(text) == masked
    assert mask(text) == masked


def _refused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_probe_says_why_an_index_cannot_be_reached():
    assert deps.probe("http://127.0.0.1:{}/simple/".format(_refused_port()), 5) == "connection refused"
    assert deps.probe("http://mxtt-no-such-index.invalid/simple/", 5) == \
        "the name mxtt-no-such-index.invalid does not resolve"
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        assert deps.probe("http://127.0.0.1:{}/simple/".format(silent.getsockname()[1]), 0.5) == \
            "no answer within 0.5 s"
    assert deps.probe("file:///nowhere/simple") is None


def test_an_unreachable_index_names_itself_without_credentials_and_how_to_ship_wheels(tmp_path):
    port = _refused_port()
    index = deps.Index("http://user:pw@127.0.0.1:{}/simple/".format(port), "PIP_INDEX_URL")
    with pytest.raises(PipInstallError) as info:
        deps.install(user_code(True, False), str(tmp_path), {}, Pip(1), python=PY, index=index)
    assert str(info.value) == (
        "the package index http://user:****@127.0.0.1:{}/simple/ (PIP_INDEX_URL) could not be reached "
        "(connection refused); requirements.txt needs packages the image does not have. To install without an "
        "index, ship their wheels in code/wheelhouse/ (pip download -r requirements.txt -d wheelhouse for this "
        "image's Python and platform)".format(port))


def test_an_unreachable_index_with_an_extra_index_that_answers_is_left_to_pip(tmp_path):
    """pip warns about an index it cannot reach and installs from the extra index."""
    from http.server import BaseHTTPRequestHandler, HTTPServer
    import threading

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        extra = "http://127.0.0.1:{}/simple/".format(server.server_address[1])
        index = deps.Index("http://127.0.0.1:{}/simple/".format(_refused_port()), "PIP_INDEX_URL", extras=(extra,))
        pip = Pip(1, 0)
        deps.install(user_code(True, False), str(tmp_path), {}, pip, python=PY, index=index)
    finally:
        server.shutdown()
        server.server_close()
    assert pip.calls[1] == (PIP + ("-r", "requirements.txt"), {}, True)
