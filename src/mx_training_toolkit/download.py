"""Download the user's code (a directory, a .tar.gz, file:// or s3://) and move it into ``code/``."""

import errno
import os
import shutil
import tempfile

from .archive import extract_tarball
from .errors import CodeDownloadError
from .log import get_logger

log = get_logger(__name__)

S3_ENDPOINT_ENV = "S3_ENDPOINT_URL"


def _download_s3(url, dest_file, environ, region=None):
    try:
        import boto3  # only here: importing boto3 costs time and memory
    except ImportError as e:
        raise CodeDownloadError(
            "cannot download {}: the boto3 package is not installed (pip install boto3)".format(url)) from e
    bucket, _, key = url[len("s3://"):].partition("/")
    if not bucket or not key:
        raise CodeDownloadError("sagemaker_submit_directory {!r} is not an s3://bucket/key URL".format(url))
    endpoint = environ.get(S3_ENDPOINT_ENV) or None
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name=region)
        client.download_file(bucket, key, dest_file)
    except Exception as e:  # botocore raises many unrelated types; all mean "not downloaded"
        raise CodeDownloadError("cannot download {}: {}".format(url, e)) from e


def fetch(submit_directory, staging, environ, region=None):
    """Put the code named by ``submit_directory`` into the empty directory ``staging``."""
    source = submit_directory
    if source.startswith("file://"):
        source = source[len("file://"):]
    if source.startswith("s3://"):
        archive = staging + ".tar.gz"  # beside the staging dir, so as unique as it is
        try:
            _download_s3(source, archive, environ, region)
            extract_tarball(archive, staging)
        finally:
            if os.path.lexists(archive):
                os.unlink(archive)
        return
    if "://" in source:
        raise CodeDownloadError("sagemaker_submit_directory {!r}: unsupported URL scheme".format(submit_directory))
    if os.path.isdir(source):
        inside = os.path.realpath(staging).startswith(os.path.realpath(source) + os.sep)
        if inside:  # copying would copy the copy into itself
            raise CodeDownloadError("sagemaker_submit_directory {!r} contains the job's base directory; "
                                    "put the code somewhere else".format(submit_directory))
        try:
            shutil.copytree(source, staging, symlinks=True, dirs_exist_ok=True)
        except (OSError, shutil.Error) as e:
            raise CodeDownloadError("cannot copy the code from {}: {}".format(source, e)) from e
    elif os.path.isfile(source):
        extract_tarball(source, staging)
    else:
        raise CodeDownloadError("sagemaker_submit_directory {!r} does not exist".format(submit_directory))


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


def download(submit, code_dir, environ, region=None):
    """Put the code named by ``submit`` into ``code_dir``, all or nothing."""
    existing = os.listdir(code_dir) if os.path.isdir(code_dir) else []
    if existing:
        log.warning("code: %s already has %d entries; the code from %s is copied over them",
                    code_dir, len(existing), submit)
    parent = os.path.dirname(os.path.abspath(code_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".code-download-", dir=parent)
    try:
        fetch(submit, staging, environ, region)
        if not os.listdir(staging):
            raise CodeDownloadError("sagemaker_submit_directory {!r} holds no files".format(submit))
        clash = _conflict(staging, code_dir) if existing else None
        if clash is not None:
            raise CodeDownloadError("the code from {} cannot be copied over {}: {!r} is a {} there".format(
                submit, code_dir, clash, "directory" if os.path.isdir(os.path.join(code_dir, clash)) else "file"))
        try:
            _merge(staging, code_dir)
        except (OSError, shutil.Error) as e:
            raise CodeDownloadError("cannot copy the code from {} into {}: {}".format(submit, code_dir, e)) from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("code: downloaded %s into %s", submit, code_dir)
