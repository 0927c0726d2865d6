"""Put the user's code in place (safe extraction), install its requirements, decide how to run it."""

import ast
import logging
import os
import shutil
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from typing import Tuple

from .errors import CodeDownloadError, ConfigError

log = logging.getLogger(__name__)

S3_ENDPOINT_ENV = "S3_ENDPOINT_URL"


# ---- mode detection ---------------------------------------------------------------------------


def _is_main_guard(node):
    """True for ``if __name__ == '__main__':`` (either operand order)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main


def detect_legacy(source: str, filename: str = "<script>") -> Tuple[bool, str]:
    """Decide legacy (import and call ``train()``) vs script mode from a script's syntax tree.

    Returns ``(legacy, reason)``. A syntax error counts as script mode: Python will report it
    with a proper traceback when the script runs.
    """
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError):
        return False, "{} does not parse; running it as a script so Python reports the error".format(filename)
    has_train = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "train" for n in tree.body)
    has_guard = any(_is_main_guard(n) for n in tree.body)
    if has_train and not has_guard:
        return True, "{} defines train() at module level and has no `if __name__ == '__main__'` block".format(
            filename)
    if has_guard:
        return False, "{} has an `if __name__ == '__main__'` block".format(filename)
    return False, "{} defines no module-level train()".format(filename)


# ---- getting the code -------------------------------------------------------------------------


def _check_member(member, root):
    """Refuse a tar member that would land outside ``root`` or is not a plain file, dir or link."""
    name = member.name
    if os.path.isabs(name) or name.startswith("/"):
        raise CodeDownloadError("the code archive has an absolute path: {!r}".format(name))
    if ".." in name.replace("\\", "/").split("/"):
        raise CodeDownloadError("the code archive has a path with '..': {!r}".format(name))
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise CodeDownloadError("the code archive has a special file (device or fifo): {!r}".format(name))
    if member.issym() or member.islnk():
        target = member.linkname
        base = root if member.islnk() else os.path.dirname(os.path.join(root, name))
        resolved = os.path.realpath(os.path.join(base, target))
        if os.path.isabs(target) or not (resolved == root or resolved.startswith(root + os.sep)):
            raise CodeDownloadError(
                "the code archive has a link that points out of the code: {!r} -> {!r}".format(name, target))


def extract_tarball(archive, dest):
    """Extract ``archive`` into the empty directory ``dest``, refusing unsafe members."""
    root = os.path.realpath(dest)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, root)
            for member in members:
                tar.extract(member, root, set_attrs=not member.issym())
    except CodeDownloadError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        raise CodeDownloadError("cannot read the code archive {}: {}".format(archive, e)) from e


def _download_s3(url, dest_file, environ):
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
        client = boto3.client("s3", endpoint_url=endpoint)
        client.download_file(bucket, key, dest_file)
    except Exception as e:  # botocore raises many unrelated types; all mean "not downloaded"
        raise CodeDownloadError("cannot download {}: {}".format(url, e)) from e


def fetch(submit_directory, staging, environ):
    """Put the code named by ``submit_directory`` into the empty directory ``staging``."""
    source = submit_directory
    if source.startswith("file://"):
        source = source[len("file://"):]
    if source.startswith("s3://"):
        archive = os.path.join(os.path.dirname(staging), "sourcedir.tar.gz")
        _download_s3(source, archive, environ)
        try:
            extract_tarball(archive, staging)
        finally:
            os.unlink(archive)
        return
    if "://" in source:
        raise CodeDownloadError("sagemaker_submit_directory {!r}: unsupported URL scheme".format(submit_directory))
    if os.path.isdir(source):
        try:
            shutil.copytree(source, staging, symlinks=True, dirs_exist_ok=True)
        except (OSError, shutil.Error) as e:
            raise CodeDownloadError("cannot copy the code from {}: {}".format(source, e)) from e
    elif os.path.isfile(source):
        extract_tarball(source, staging)
    else:
        raise CodeDownloadError("sagemaker_submit_directory {!r} does not exist".format(submit_directory))


def _same_dir(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def put_in_place(config, environ):
    """Get the code into ``code/``; the directory changes only once the whole download succeeded."""
    code_dir = config.paths.code_dir
    submit = config.submit_directory
    if submit is None or _same_dir(submit.replace("file://", "", 1), code_dir):
        log.info("code: using %s as it is (no separate submit directory)", code_dir)
        return
    existing = os.listdir(code_dir) if os.path.isdir(code_dir) else []
    if existing:
        log.warning("code: %s already has %d entries; the code from %s is copied over them",
                    code_dir, len(existing), submit)
    parent = os.path.dirname(os.path.abspath(code_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".code-download-", dir=parent)
    try:
        fetch(submit, staging, environ)
        if not os.listdir(staging):
            raise CodeDownloadError("sagemaker_submit_directory {!r} holds no files".format(submit))
        os.makedirs(code_dir, exist_ok=True)
        shutil.copytree(staging, code_dir, symlinks=True, dirs_exist_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("code: downloaded %s into %s", submit, code_dir)


# ---- how to run it ----------------------------------------------------------------------------


@dataclass(frozen=True)
class UserCode:
    """What the worker process runs: ``argv`` (user arguments included) and the mode."""

    argv: Tuple[str, ...]
    legacy: bool
    mode_reason: str
    requirements: bool  # a requirements.txt is present
    is_package: bool  # a setup.py is present


LEGACY_RUNNER = "mx_training_toolkit.legacy"


def describe(config, user_args, python=sys.executable):
    """Look at the code in ``code/`` and decide the worker's argv and mode. Reads files, runs nothing."""
    code_dir = config.paths.code_dir
    entry = config.user_entry_point
    path = os.path.join(code_dir, entry)
    is_package = os.path.isfile(os.path.join(code_dir, "setup.py"))
    requirements = os.path.isfile(os.path.join(code_dir, "requirements.txt"))
    if not os.path.isfile(path):
        raise ConfigError("hyperparameters.json: field 'sagemaker_program' names {!r}, which is not in the code ({})"
                          .format(entry, code_dir))
    legacy, reason = False, "{} is not a Python file".format(entry)
    if entry.endswith(".py"):
        with open(path, "rb") as f:
            source = f.read()
        legacy, reason = detect_legacy(source, entry)
    if config.legacy_mode is not None:
        legacy = config.legacy_mode
        reason = "sagemaker_mxnet_legacy_mode is {}".format("true" if legacy else "false")
        if legacy and not entry.endswith(".py"):
            raise ConfigError("hyperparameters.json: field 'sagemaker_mxnet_legacy_mode' is true but {!r} "
                              "is not a Python file".format(entry))
    if legacy:
        argv = (python, "-m", LEGACY_RUNNER)
    elif is_package and entry.endswith(".py"):
        argv = (python, "-m", config.module_name.replace("/", ".")) + tuple(user_args)
    elif entry.endswith(".py"):
        argv = (python, entry) + tuple(user_args)
    else:
        argv = (os.path.join(".", entry),) + tuple(user_args)
    return UserCode(argv=argv, legacy=legacy, mode_reason=reason, requirements=requirements, is_package=is_package)


def install_commands(user_code, python=sys.executable):
    """The pip commands to run in ``code/`` before the script: requirements, then the package."""
    commands = []
    if user_code.requirements:
        commands.append((python, "-m", "pip", "install", "--disable-pip-version-check", "-r", "requirements.txt"))
    if user_code.is_package:
        commands.append((python, "-m", "pip", "install", "--disable-pip-version-check", "."))
    return commands


def make_executable(config):
    """A non-Python entry point is executed directly: make sure it may be."""
    path = os.path.join(config.paths.code_dir, config.user_entry_point)
    mode = os.stat(path).st_mode
    if not mode & 0o100:
        os.chmod(path, mode | 0o755)
