"""The user's code: get it into ``code/`` (the download and the safe extraction are ``download``'s and
``archive``'s, imported only when there is something to fetch; the pip commands that install its
dependencies are ``dependencies``'s), and how the worker runs it (script, module, legacy or executable, from the syntax tree) -> ``UserCode``."""

import ast
import os
import sys
from typing import NamedTuple, Tuple

from . import stacks
from .errors import ConfigError
from .log import get_logger
from .names import DOWNLOAD_STAGING_PREFIX, LEGACY_MODE_HP, PROGRAM_HP

log = get_logger(__name__)



# ---- mode detection ---------------------------------------------------------------------------


def _compares_name_with_main(tree):
    """The line of the first comparison of ``__name__`` with ``'__main__'`` anywhere in ``tree``, in
    any form (``==``, ``in ('__main__',)``, either order, inside ``and``, ``try:`` or a function), or 0."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        if any(isinstance(o, ast.Name) and o.id == "__name__" for o in operands) and any(
                isinstance(n, ast.Constant) and n.value == "__main__" for o in operands for n in ast.walk(o)):
            return node.lineno
    return 0


def detect_legacy(source, filename="<script>"):
    """Decide legacy (import and call ``train()``) vs script mode from a script's syntax tree.

    Legacy only when the file defines a module-level ``train()`` and never compares ``__name__``
    with ``'__main__'``, in any form, at any depth: a script-mode script with a ``train`` helper
    must never be imported instead of run. Returns ``(legacy, reason)``. A syntax error counts as
    script mode: Python will report it with a proper traceback when the script runs.
    """
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False, "{} does not parse; running it as a script so Python reports the error".format(filename)
    has_train = any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == "train" for n in tree.body)
    guard_line = _compares_name_with_main(tree)
    if guard_line:
        return False, "{} compares __name__ with '__main__' (line {})".format(filename, guard_line)
    if has_train:
        return True, "{} defines train() at module level and never compares __name__ with '__main__'".format(
            filename)
    return False, "{} defines no module-level train()".format(filename)


# ---- getting the code -------------------------------------------------------------------------


def put_in_place(config, settings):
    """Get the code into ``code/``; the directory changes only once the whole download succeeded.
    ``settings`` (``settings.Settings``) gives the S3 endpoint and timeout."""
    code_dir = config.paths.code_dir
    remove_download_leftovers(code_dir)
    submit = config.submit_directory
    if submit is None or _same_dir(submit.replace("file://", "", 1), code_dir):
        log.info("code: using %s as it is (no separate submit directory)", code_dir)
        return
    from .download import download  # archives, copies and S3: imported only when there is a download

    download(submit, code_dir, settings, config.region)


def remove_download_leftovers(code_dir):
    """Remove the staging directories beside ``code_dir`` that a launcher killed during its
    download left -> the paths removed (see ``download.remove_leftovers``)."""
    try:
        names = os.listdir(os.path.dirname(os.path.abspath(code_dir)))
    except OSError:
        return []
    if not any(n.startswith(DOWNLOAD_STAGING_PREFIX) for n in names):
        return []
    from .download import remove_leftovers

    return remove_leftovers(code_dir)


def _same_dir(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


# ---- how to run it ----------------------------------------------------------------------------


class UserCode(NamedTuple):
    """How the worker runs the user's code: ``kind`` is "script" (``python FILE``), "module"
    (``python -m MODULE``, the code has a setup.py), "legacy" (our runner imports it and calls
    ``train()``) or "executable" (run directly)."""

    kind: str
    target: str  # the file (script, legacy, executable) or the dotted module name, relative to code/
    args: Tuple[str, ...] = ()  # the user hyperparameters as argv
    mode_reason: str = ""  # why this kind, in words, for the log
    requirements: bool = False  # a requirements.txt is present
    is_package: bool = False  # a setup.py is present

    @property
    def legacy(self):
        return self.kind == "legacy"

    def argv(self, python=sys.executable, record_status=False, readable=False):
        """The worker's argv. ``record_status`` runs Python code through our runner, which
        records the real exit status (MXNet's distributed shutdown replaces it with 0). Our
        runners start from ``runner_bootstrap``, never ``-m``: see there why. ``readable`` gives
        the same command for the log, with ``-m RUNNER`` in place of the bootstrap code."""
        def runner(module):
            return (python, "-m", module) if readable else (python, "-c", runner_bootstrap(module))

        if self.kind == "legacy":
            return runner(LEGACY_RUNNER)
        if self.kind == "executable":
            return (os.path.join(".", self.target),) + self.args
        # A file name such as "-c.py" would be read as an option: pass it as a path.
        script = self.target if not self.target.startswith("-") else os.path.join(".", self.target)
        if record_status:
            lead = ("--module", self.target) if self.kind == "module" else (script,)
            return runner(SCRIPT_RUNNER) + lead + self.args
        lead = ("-m", self.target) if self.kind == "module" else (script,)
        return (python,) + lead + self.args


LEGACY_RUNNER = "mx_training_toolkit.legacy"
SCRIPT_RUNNER = "mx_training_toolkit.runner"
# The installed package, found from this file: the runners must be this package's own.
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def runner_bootstrap(runner, package_dir=PACKAGE_DIR):
    """Python code for ``python -c`` -> a one-line string that imports ``runner`` (a module of this
    package) from ``package_dir`` and calls its ``main()``; the arguments after it are the runner's.

    Why not ``python -m``: the worker runs in ``code/`` with ``code/`` first on PYTHONPATH, so a
    user file ``code/mx_training_toolkit.py`` would be imported in place of this package. The
    package is loaded from its own directory instead, and ``sys.path`` is left as ``-m`` leaves it
    (the working directory first, as an absolute path), so the user's code imports as before.

    It arms the stack dumper first (``stacks.arm_code``), before anything can hang.

    The two functions come from where ``importlib.util`` itself takes them: importing
    ``importlib.util`` (contextlib, collections, functools ...) delays every start by milliseconds."""
    init = os.path.join(package_dir, "__init__.py")
    return stacks.arm_code() + ("import importlib.machinery, os, sys; sys.path[0] = sys.path[0] or os.getcwd(); "
            "from importlib._bootstrap_external import spec_from_file_location as f; "
            "from importlib._bootstrap import module_from_spec as m; "
            "s = f({package!r}, {init!r}); p = m(s); "
            "sys.modules[s.name] = p; s.loader.exec_module(p); "
            "import importlib; importlib.import_module({runner!r}).main()"
            .format(package=runner.partition(".")[0], init=init, runner=runner))


def describe(config, user_args):
    """Look at the code in ``code/`` and decide the worker's argv and mode. Reads files, runs nothing."""
    code_dir = config.paths.code_dir
    entry = config.user_entry_point
    path = os.path.join(code_dir, entry)
    is_package = os.path.isfile(os.path.join(code_dir, "setup.py"))
    requirements = os.path.isfile(os.path.join(code_dir, "requirements.txt"))
    if not os.path.isfile(path):
        raise ConfigError("hyperparameters.json: field {!r} names {!r}, which is not in the code ({})"
                          .format(PROGRAM_HP, entry, code_dir))
    legacy, reason = False, "{} is not a Python file".format(entry)
    if entry.endswith(".py"):
        try:
            with open(path, "rb") as f:
                source = f.read()
        except OSError as e:
            raise ConfigError("hyperparameters.json: field {!r} names {!r}, which cannot be read ({})".format(
                PROGRAM_HP, entry, e.strerror or e)) from e
        legacy, reason = detect_legacy(source, entry)
    if config.legacy_mode is not None:
        legacy = config.legacy_mode
        reason = "{} is {}".format(LEGACY_MODE_HP, "true" if legacy else "false")
        if legacy and not entry.endswith(".py"):
            raise ConfigError("hyperparameters.json: field {!r} is true but {!r} is not a Python file".format(
                LEGACY_MODE_HP, entry))
    if legacy:
        kind, target = "legacy", entry
    elif is_package and entry.endswith(".py"):
        kind, target = "module", config.module_name.replace("/", ".")
    elif entry.endswith(".py"):
        kind, target = "script", entry
    else:
        kind, target = "executable", entry
    return UserCode(kind=kind, target=target, args=tuple(user_args), mode_reason=reason,
                    requirements=requirements, is_package=is_package)


def make_executable(config):
    """A non-Python entry point is executed directly: make sure it may be. Never through a link:
    the link's target may be a file outside ``code/`` that is not ours to change."""
    path = os.path.join(config.paths.code_dir, config.user_entry_point)
    if os.path.islink(path):
        return
    try:
        mode = os.stat(path).st_mode
        if not mode & 0o100:
            os.chmod(path, mode | 0o755)
    except OSError as e:
        raise ConfigError("hyperparameters.json: field {!r} names {!r}, which is not executable and cannot be made "
                          "so ({})".format(PROGRAM_HP, config.user_entry_point, e.strerror or e)) from e
