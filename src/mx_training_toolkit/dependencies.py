"""The user's dependencies: ``requirements.txt`` and ``setup.py`` installed with pip, without the
package index whenever that is possible, and a clear failure within seconds when the index is
needed and cannot be reached (docs/contract.md section 4).

In order:

- ``code/wheelhouse/`` exists: everything comes from it (``--no-index --find-links``); a
  ``setup.py`` is built without isolation, with the environment's own setuptools.
- Otherwise each pip command first runs with ``--no-index``: the image (and any wheels pip's own
  configuration points at) may already have everything, and a job with network isolation whose
  needs are met then never touches the network.
- What is still missing comes from the index: ``CA_REPOSITORY_ARN`` (a CodeArtifact repository,
  as the reference toolkit reads it), else pip's own configuration (``PIP_INDEX_URL``, pip.conf),
  else pip's default. The index is first probed (``probe``, at most ``PROBE_TIMEOUT`` seconds):
  pip itself would retry an unreachable index for minutes. An index pip is given by us goes to pip
  through its environment, never its command line, so no credential is in a logged command.
"""

import os
import re
import subprocess
import sys
import threading
from typing import NamedTuple, Optional
from urllib.parse import urlsplit, urlunsplit

from .errors import PipInstallError
from .log import get_logger
from .masking import mask_url

log = get_logger(__name__)

WHEELHOUSE = "wheelhouse"  # code/wheelhouse/: the wheels shipped with the code
CA_ARN_ENV = "CA_REPOSITORY_ARN"
PIP_INDEX_ENV = "PIP_INDEX_URL"
PROBE_TIMEOUT = 10.0  # seconds the index gets to answer one request (name, connection and answer)
CONFIG_TIMEOUT = 20.0  # seconds for `pip config list`
CODEARTIFACT_TIMEOUT = 10.0  # seconds per CodeArtifact request (two attempts at most)
# The reference toolkit's pattern (sagemaker-training 5.1.4), matched from the start.
CA_ARN = re.compile(r"arn:(?P<partition>[^:]+):codeartifact:(?P<region>[^:]+):(?P<account>[^:]+):"
                    r"repository/(?P<domain>[^/]+)/(?P<repository>.+)")
CA_FAILED = "failed to configure pip to use codeartifact"


class Index(NamedTuple):
    """The package index pip installs from when it needs one."""

    url: Optional[str]  # None: pip's configuration says no index at all
    source: str  # where the URL comes from, in words
    env: tuple = ()  # (name, value) pairs pip's environment gets (the CodeArtifact URL)
    extras: tuple = ()  # pip's extra-index-url values: pip also asks these


def pip_install(python, *args):
    """``pip install`` with ``args`` -> argv. ``-I``: pip runs in ``code/`` with the code first on
    PYTHONPATH, so a user's ``csv.py`` would shadow the standard library inside pip itself;
    isolated mode leaves out the working directory and PYTHONPATH (pip still reads PIP_*)."""
    return (python, "-I", "-m", "pip", "install", "--disable-pip-version-check") + args


def targets(user_code):
    """What to install, in order -> ``(what, pip arguments, build arguments)`` for each."""
    found = []
    if user_code.requirements:
        found.append(("requirements.txt", ("-r", "requirements.txt"), ()))
    if user_code.is_package:
        found.append(("setup.py", (".",), ("--no-build-isolation",)))
    return found


def wheelhouse_dir(code_dir):
    """``code/wheelhouse`` when it is a directory, else None."""
    path = os.path.join(code_dir, WHEELHOUSE)
    return path if os.path.isdir(path) else None


def offline_args(wheelhouse, build):
    """The arguments that keep pip off the index: ``--no-index``, the wheelhouse's wheels, and for a
    package its build without isolation (an isolated build would fetch setuptools)."""
    links = ("--find-links", wheelhouse) if wheelhouse else ()
    return ("--no-index",) + links + build


def install(user_code, code_dir, environ, run, python=sys.executable, probe_timeout=PROBE_TIMEOUT, index=None):
    """Install the code's dependencies. ``run(argv, env, fatal)`` runs one pip command under the
    job's loop -> its ``JobResult``, or None once the job was stopped (then this returns at once);
    with ``fatal`` it raises ``PipInstallError`` itself when pip fails. ``index``: the ``Index``
    to use when one is needed (``find_index`` asks when None).

    Raises ``PipInstallError`` when the index is needed and cannot be reached or configured."""
    wheelhouse = wheelhouse_dir(code_dir)
    checked = False
    for what, args, build in targets(user_code):
        if wheelhouse:
            log.info("pip: %s from %s only (no index)", what, wheelhouse)
            if run(pip_install(python, *offline_args(wheelhouse, build), *args), {}, True) is None:
                return
            continue
        log.info("pip: %s, first without the index (the image may have everything)", what)
        result = run(pip_install(python, *offline_args(None, build), *args), {}, False)
        if result is None:
            return
        if result.ok:
            continue
        if not checked:
            index = index or find_index(environ, python)
            check_reachable(index, what, probe_timeout)
            checked = True
        log.info("pip: %s needs more than the image has: from %s", what, describe(index))
        if run(pip_install(python, *args), dict(index.env), True) is None:
            return


def describe(index):
    if index.url is None:
        return "no index ({})".format(index.source)
    return "{} ({})".format(mask_url(index.url), index.source)


# ---- which index -----------------------------------------------------------------------------


def find_index(environ, python=sys.executable, config_lines=None):
    """The index pip would use -> ``Index``. ``config_lines``: the output of ``pip config list``
    (read here when None)."""
    arn = environ.get(CA_ARN_ENV, "").strip()
    if arn:
        url = codeartifact_index(arn)
        return Index(url, "{}={}".format(CA_ARN_ENV, arn), ((PIP_INDEX_ENV, url),))
    if config_lines is None:
        config_lines = pip_config(environ, python)
    settings = parse_config(config_lines)
    scopes = (":env:", "install", "global")
    extras = next((tuple(settings[s + ".extra-index-url"].split()) for s in scopes
                   if settings.get(s + ".extra-index-url")), ())
    for scope in scopes:
        if truthy(settings.get(scope + ".no-index", "")):
            return Index(None, "pip's configuration: no-index")
        url = settings.get(scope + ".index-url")
        if url:
            source = PIP_INDEX_ENV if scope == ":env:" else "pip's configuration: {}.index-url".format(scope)
            return Index(url, source, extras=extras)
    return Index(pip_default_index(), "pip's default", extras=extras)


def pip_config(environ, python):
    """``pip config list`` in the job's environment -> its lines ([] when pip cannot say)."""
    try:
        proc = subprocess.run((python, "-I", "-m", "pip", "config", "list"), env=dict(environ),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                              timeout=CONFIG_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return proc.stdout.decode("utf-8", "replace").splitlines()


def parse_config(lines):
    """``pip config list`` lines (``global.index-url='URL'``) -> {key: value}; the later wins."""
    import ast

    settings = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep:
            continue
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            value = value.strip()
        settings[key.strip()] = str(value)
    return settings


def truthy(text):
    return text.strip().lower() in ("1", "true", "yes", "on")


def pip_default_index():
    """pip's own default index URL (asked of pip: this package names no index), or None."""
    try:
        from pip._internal.models.index import PyPI
    except ImportError:
        return None
    return PyPI.simple_url


# ---- CodeArtifact ----------------------------------------------------------------------------


def parse_arn(arn):
    """``CA_REPOSITORY_ARN`` -> its parts (partition, region, account, domain, repository).
    Raises ``PipInstallError`` when it is not a CodeArtifact repository ARN."""
    match = CA_ARN.match(arn)
    if not match:
        raise PipInstallError("{}: {}={!r} is not a CodeArtifact repository ARN "
                              "(arn:PARTITION:codeartifact:REGION:ACCOUNT:repository/DOMAIN/REPOSITORY)"
                              .format(CA_FAILED, CA_ARN_ENV, arn))
    return match.groupdict()


def codeartifact_url(endpoint, repository, token):
    """The index URL the reference toolkit makes: the endpoint's trailing ``REPOSITORY/`` made
    ``REPOSITORY/simple/``, and the token as the password of user ``aws``. (Real endpoints are
    https; an http endpoint, as a local stand-in gives, gets the credentials the same way.)"""
    tail = repository + "/"
    if endpoint.endswith(tail):
        endpoint = endpoint[:-len(tail)] + repository + "/simple/"
    scheme, sep, rest = endpoint.partition("://")
    return "{}://aws:{}@{}".format(scheme, token, rest) if sep else endpoint


def codeartifact_index(arn, client=None):
    """The CodeArtifact repository's pip index URL, token included. ``client``: a boto3
    CodeArtifact client (made for the ARN's region when None). Raises ``PipInstallError``."""
    parts = parse_arn(arn)
    try:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("codeartifact", region_name=parts["region"],
                                  config=Config(connect_timeout=CODEARTIFACT_TIMEOUT,
                                                read_timeout=CODEARTIFACT_TIMEOUT,
                                                retries={"max_attempts": 2, "mode": "standard"}))
        token = client.get_authorization_token(domain=parts["domain"], domainOwner=parts["account"])
        endpoint = client.get_repository_endpoint(domain=parts["domain"], domainOwner=parts["account"],
                                                  repository=parts["repository"], format="pypi")
        return codeartifact_url(endpoint["repositoryEndpoint"], parts["repository"], token["authorizationToken"])
    except Exception as e:  # any error at all fails the job, as in the reference
        raise PipInstallError("{} ({}={}): {}: {}".format(CA_FAILED, CA_ARN_ENV, arn, type(e).__name__,
                                                          mask_url(str(e)))) from e


# ---- reachability ----------------------------------------------------------------------------


def check_reachable(index, what, timeout=PROBE_TIMEOUT):
    """Raise ``PipInstallError`` (first line: the index could not be reached, which, why, and how
    to ship wheels instead) when ``index`` does not answer within ``timeout`` seconds."""
    if index.url is None:
        return
    reason = probe(index.url, timeout)
    if reason is None:
        return
    answering = next((url for url in index.extras if probe(url, timeout) is None), None)
    if answering is not None:  # pip warns about the index and goes on with the extra one
        log.warning("pip: the package index %s could not be reached (%s); the extra index %s answers: pip "
                    "installs from it", describe(index), reason, mask_url(answering))
        return
    raise PipInstallError(
        "the package index {} could not be reached ({}); {} needs packages the image does not have. "
        "To install without an index, ship their wheels in code/{}/ (pip download -r requirements.txt "
        "-d {} for this image's Python and platform)".format(describe(index), reason, what, WHEELHOUSE, WHEELHOUSE))


def probe(url, timeout=PROBE_TIMEOUT):
    """Ask ``url`` once, without its credentials -> None when a server answered anything at all
    (an error status too: pip will tell), else why not, in words. Local (file:) indexes are not
    asked. Bounded: name resolution, which no socket timeout covers, runs out too."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_ask(_without_credentials(parts), timeout)),
                              name="index-probe", daemon=True)
    worker.start()
    worker.join(timeout + 1.0)
    return outcome[0] if outcome else "no answer within {:g} s".format(timeout)


def _ask(url, timeout):
    import socket
    import ssl
    import urllib.error
    import urllib.request

    # Nothing secret is sent, so the certificate is not checked here: pip checks it with its own settings.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "mx-training-toolkit"}),
                                    timeout=timeout, context=context) as response:
            response.read(1)
        return None
    except urllib.error.HTTPError:
        return None
    except urllib.error.URLError as e:
        error = e.reason
    except OSError as e:
        error = e
    if isinstance(error, socket.gaierror):
        return "the name {} does not resolve".format(urlsplit(url).hostname)
    if isinstance(error, (TimeoutError, socket.timeout)) or "timed out" in str(error):
        return "no answer within {:g} s".format(timeout)
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ssl.SSLError):
        return None  # a server answered; pip reports what is wrong with its TLS
    return getattr(error, "strerror", None) or str(error)


def _without_credentials(parts):
    host = parts.hostname or ""
    if ":" in host:
        host = "[{}]".format(host)
    netloc = host + (":{}".format(parts.port) if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
