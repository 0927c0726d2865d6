"""Download the user's code (a directory, a .tar.gz, file:// or s3://) and move it into ``code/``.

S3 requests have bounded timeouts and a few attempts (``S3_CONNECT_TIMEOUT``, ``S3_READ_TIMEOUT``,
``S3_ATTEMPTS``), so an endpoint that accepts connections and never answers ends the download
with a ``CodeDownloadError`` instead of keeping the job busy for minutes. The launcher's settings
(``settings.Settings``, read from the environment once) give the S3 endpoint (``s3_endpoint``) and
one timeout for both the connect and the read of each S3 request (``s3_timeout``; None: the
defaults, 10 s to connect and 30 s for each reply).

The download runs in a daemon thread while the main thread waits in short steps, so a stop
(the launcher's SIGTERM handler raises ``Terminated`` in the main thread) is honoured at once.
Everything a download writes is under one ``.code-download-*`` directory beside ``code/``;
``remove_leftovers`` removes those that a launcher killed mid-download left behind.
"""

import errno
import os
import shutil
import tempfile
import threading

from .archive import check_directory, extract_tarball
from .errors import CodeDownloadError
from .log import get_logger
from .names import DOWNLOAD_STAGING_PREFIX, SUBMIT_DIR_HP

log = get_logger(__name__)

S3_CONNECT_TIMEOUT = 10.0  # seconds to open a connection
S3_READ_TIMEOUT = 30.0  # seconds S3 may stay silent on an open connection
S3_ATTEMPTS = 3  # tries of each request, and of each object body that stalls while streaming
WAIT_STEP = 0.1  # seconds between the main thread's checks for a stop while a download runs


def s3_timeouts(timeout):
    """``(connect, read)`` timeouts in seconds for S3 requests: both ``timeout`` (the setting,
    already validated: above 0), or the defaults when it is None."""
    if timeout is None:
        return S3_CONNECT_TIMEOUT, S3_READ_TIMEOUT
    return timeout, timeout


def run_interruptibly(work, name):
    """Return ``work()``'s result (or raise its exception), computed in a daemon thread.

    The calling (main) thread only waits, in steps of ``WAIT_STEP``: Python runs signal handlers
    in the main thread, and when the kernel delivers the signal to another thread the main thread
    sees it only once its current wait returns. So an exception a handler raises (``Terminated``)
    ends the wait within a step, wherever the download is. The abandoned thread is never waited
    for; it ends with the process (the launcher exits through ``os._exit``)."""
    outcome = []

    def target():
        try:
            outcome.append((True, work()))
        except BaseException as e:  # handed to the waiting thread, which raises it
            outcome.append((False, e))

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(WAIT_STEP)
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def _download_s3(url, dest_file, settings, region=None):
    try:
        import boto3  # only here: importing boto3 costs time and memory
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config
    except ImportError as e:
        raise CodeDownloadError(
            "cannot download {}: the boto3 package is not installed (pip install boto3)".format(url)) from e
    bucket, _, key = url[len("s3://"):].partition("/")
    if not bucket or not key:
        raise CodeDownloadError("{} {!r} is not an s3://bucket/key URL".format(SUBMIT_DIR_HP, url))
    endpoint = settings.s3_endpoint
    connect_timeout, read_timeout = s3_timeouts(settings.s3_timeout)
    config = Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                    retries={"mode": "standard", "total_max_attempts": S3_ATTEMPTS})
    # No transfer threads: the one daemon thread below does the whole download, so a stop that
    # abandons it leaves no thread pool behind (an archive of code is small; parallel ranges of
    # one object would gain little).
    transfer = TransferConfig(num_download_attempts=S3_ATTEMPTS, use_threads=False)

    def work():
        client = boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config)
        client.download_file(bucket, key, dest_file, Config=transfer)

    try:
        run_interruptibly(work, "s3-download")
    except Exception as e:  # botocore raises many unrelated types; all mean "not downloaded"
        stall = _stall(e)
        if stall is None:
            raise CodeDownloadError("cannot download {}: {}".format(url, e)) from e
        kind, request_url = stall
        where = endpoint or _origin(request_url)
        what, seconds = ("connection", connect_timeout) if kind == "connect" else ("reply", read_timeout)
        raise CodeDownloadError("cannot download {}: {} did not answer (no {} within {:g} s, {} attempts)".format(
            url, "the S3 endpoint " + where if where else "S3", what, seconds, S3_ATTEMPTS)) from e


def _origin(url):
    """``scheme://host[:port]`` of ``url`` (None for None): the endpoint, without the request's path."""
    if not url:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return "{}://{}".format(parts.scheme, parts.netloc) if parts.netloc else url


def _stall(error):
    """``("connect" or "read", the request's URL)`` when ``error`` (or what it wraps) is a
    botocore timeout, else None."""
    from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (ConnectTimeoutError, ReadTimeoutError)):
            kind = "connect" if isinstance(error, ConnectTimeoutError) else "read"
            return kind, getattr(error, "kwargs", {}).get("endpoint_url")
        # boto3 wraps a body that kept stalling in RetriesExceededError(last_exception)
        error = getattr(error, "last_exception", None) or error.__cause__
    return None


def fetch(submit_directory, staging, settings, region=None):
    """Put the code named by ``submit_directory`` into the empty directory ``staging``."""
    source = submit_directory
    if source.startswith("file://"):
        source = source[len("file://"):]
    if source.startswith("s3://"):
        archive = staging + ".tar.gz"  # beside the staging dir, so as unique as it is
        try:
            _download_s3(source, archive, settings, region)
            extract_tarball(archive, staging)
        finally:
            if os.path.lexists(archive):
                os.unlink(archive)
        return
    if "://" in source:
        raise CodeDownloadError("{} {!r}: unsupported URL scheme".format(SUBMIT_DIR_HP, submit_directory))
    if os.path.isdir(source):
        inside = os.path.realpath(staging).startswith(os.path.realpath(source) + os.sep)
        if inside:  # copying would copy the copy into itself
            raise CodeDownloadError("{} {!r} contains the job's base directory; put the code somewhere "
                                    "else".format(SUBMIT_DIR_HP, submit_directory))
        check_directory(source, staging)
        try:
            shutil.copytree(source, staging, symlinks=True, dirs_exist_ok=True)
        except (OSError, shutil.Error) as e:
            raise CodeDownloadError("cannot copy the code from {}: {}".format(source, e)) from e
    elif os.path.isfile(source):
        extract_tarball(source, staging)
    else:
        raise CodeDownloadError("{} {!r} does not exist".format(SUBMIT_DIR_HP, submit_directory))


def _conflict(staging, code_dir):
    """The first path where the new code and what ``code/`` holds cannot merge (a file where the
    other has a directory, or an existing link to a directory), or None: checked before copying so
    that a failed copy never leaves ``code/`` half-changed."""
    for dirpath, dirnames, filenames in os.walk(staging):
        rel = os.path.relpath(dirpath, staging)
        for name in dirnames + filenames:
            new = os.path.join(dirpath, name)
            old = os.path.normpath(os.path.join(code_dir, rel, name))
            if not os.path.lexists(old):
                continue
            new_is_dir = os.path.isdir(new) and not os.path.islink(new)
            old_is_dir = os.path.isdir(old) and not os.path.islink(old)
            if new_is_dir != old_is_dir:
                return os.path.relpath(old, code_dir)
    return None


def _merge(staging, code_dir):
    """Move the new code into ``code/``: each file or link replaces one of the same name (the
    link itself, never what it points to); directories merge."""
    for dirpath, dirnames, filenames in os.walk(staging):
        target = os.path.normpath(os.path.join(code_dir, os.path.relpath(dirpath, staging)))
        os.makedirs(target, exist_ok=True)
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        dirnames[:] = [d for d in dirnames if d not in links]
        for name in filenames + links:
            src, dst = os.path.join(dirpath, name), os.path.join(target, name)
            try:
                os.replace(src, dst)
            except OSError as e:
                if e.errno != errno.EXDEV:
                    raise
                if os.path.lexists(dst):  # code/ is another file system: copy instead
                    os.unlink(dst)
                if os.path.islink(src):
                    os.symlink(os.readlink(src), dst)
                else:
                    shutil.copy2(src, dst)


def download(submit, code_dir, settings, region=None):
    """Put the code named by ``submit`` into ``code_dir``, all or nothing."""
    existing = os.listdir(code_dir) if os.path.isdir(code_dir) else []
    if existing:
        log.warning("code: %s already has %d entries; the code from %s is copied over them",
                    code_dir, len(existing), submit)
    parent = os.path.dirname(os.path.abspath(code_dir))
    os.makedirs(parent, exist_ok=True)
    # One directory holds everything the download writes (the code, an archive, boto3's partial
    # file), so that removing it leaves nothing behind, after a failure and after a SIGKILL alike.
    work = tempfile.mkdtemp(prefix=DOWNLOAD_STAGING_PREFIX, dir=parent)
    try:
        staging = os.path.join(work, "code")
        os.mkdir(staging)
        fetch(submit, staging, settings, region)
        if not os.listdir(staging):
            raise CodeDownloadError("{} {!r} holds no files".format(SUBMIT_DIR_HP, submit))
        clash = _conflict(staging, code_dir) if existing else None
        if clash is not None:
            raise CodeDownloadError("the code from {} cannot be copied over {}: {!r} is a {} there".format(
                submit, code_dir, clash, "directory" if os.path.isdir(os.path.join(code_dir, clash)) else "file"))
        try:
            _merge(staging, code_dir)
        except (OSError, shutil.Error) as e:
            raise CodeDownloadError("cannot copy the code from {} into {}: {}".format(submit, code_dir, e)) from e
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("code: downloaded %s into %s", submit, code_dir)


def remove_leftovers(code_dir):
    """Remove the ``.code-download-*`` directories beside ``code_dir`` that an earlier launch
    left (it was killed during its download) -> the paths removed. One log line each.

    A base directory serves one launcher at a time (the earlier run's success and failure files
    are removed the same way), so any such directory is a leftover."""
    parent = os.path.dirname(os.path.abspath(code_dir))
    try:
        names = sorted(n for n in os.listdir(parent) if n.startswith(DOWNLOAD_STAGING_PREFIX))
    except OSError:  # no base directory yet: nothing left over either
        return []
    removed = []
    for name in names:
        path = os.path.join(parent, name)
        if not os.path.isdir(path) or os.path.islink(path):
            continue
        try:
            shutil.rmtree(path)
        except OSError as e:  # the download works in a new directory anyway
            log.warning("code: cannot remove %s, left by an earlier launch: %s", path, e)
            continue
        log.info("code: removed %s, left by an earlier launch that stopped during its download", path)
        removed.append(path)
    return removed
