"""Child-side: run a user script as ``__main__`` and record its exit status in a file.

Why: in a process that created a distributed kvstore, MXNet's shutdown ends the process with
status 0 whatever the script did (measured with mxnet 1.9.1: ``sys.exit(3)`` and an uncaught
exception both give 0). The launcher reads the recorded status instead.

The status file (``MX_TRAINING_STATUS_FILE``) holds one JSON object, ``{"status": N, "reason":
"..."}``: the exit status and, when the child knows it, the error that ended it ("" when it does
not): the ``type: message`` of the exception that ended the script (the last one of a chain; a
``SyntaxError`` or ``ImportError`` at start-up too; ``SystemExit: message`` for
``sys.exit("message")``), or what the legacy runner says. The reason is kept to its first
``MAX_REASON`` characters (far more than the failure file's line 1 shows; the launcher masks it
before it cuts it). The file is written whole or not at all (a temporary file renamed over it).

    python -m mx_training_toolkit.runner SCRIPT.py [ARGS...]
    python -m mx_training_toolkit.runner --module MODULE [ARGS...]

(The launcher starts it through ``user_code.runner_bootstrap``, which calls ``main()``.)
"""

import os
import sys

STATUS_FILE_ENV = "MX_TRAINING_STATUS_FILE"
SIGINT = 2  # signal.SIGINT on Linux (the signal module, with enum, costs milliseconds at every start)
MAX_REASON = 4000  # characters of the reason a record keeps
MAX_RECORD = 65536  # bytes of a status file the launcher reads (a record of MAX_REASON characters fits)


# When a collective operation fails because another rank is gone, Horovod raises its own
# HorovodInternalError, or, under MXNet, its engine raises MXNetError with Horovod's words: such a
# failure is a consequence, and the launchers look (briefly) for the rank that failed first. The
# error's type decides, not the words alone: a script's own ValueError quoting them is its own failure.
SHUT_DOWN = "Horovod has been shut down"


def is_consequence(error):
    """Whether ``error`` (what the script raised) only says that another Horovod rank failed."""
    kind = type(error)
    module = kind.__module__ or ""
    if kind.__name__ == "HorovodInternalError" and module.startswith("horovod"):
        return True
    return kind.__name__ == "MXNetError" and module.startswith("mxnet") and SHUT_DOWN in str(error)


def record_status(status, environ=None, reason="", consequence=False):
    """Write ``status`` and ``reason`` (and whether the failure is a ``consequence`` of another
    process's) to the file the launcher named, if it named one.

    Never raises for a file that cannot be written: the child's own exit status still stands."""
    path = (os.environ if environ is None else environ).get(STATUS_FILE_ENV)
    if not path:
        return
    # JSON written by hand: importing json (with re and enum) would add milliseconds to every run.
    data = '{{"status": {:d}, "reason": {}{}}}'.format(int(status), json_string(str(reason or "")[:MAX_REASON]),
                                                      ', "consequence": true' if consequence else "").encode()
    # The temporary file is beside the target so that the rename is atomic: the launcher reads
    # either nothing or the whole record, never a half-written one.
    temp = "{}.{}.tmp".format(path, os.getpid())
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError:
        try:
            os.unlink(temp)
        except OSError:
            pass


def json_string(text):
    """``text`` as a JSON string in ASCII, which ``json.loads`` reads back as ``text`` (a lone
    surrogate included, as ``json.dumps`` writes one)."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code > 0xFFFF:
            code -= 0x10000
            out.append("\\u{:04x}\\u{:04x}".format(0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)))
        else:
            out.append("\\u{:04x}".format(code))
    return '"' + "".join(out) + '"'


def read_record(path):
    """``(status, reason, consequence)`` as a child wrote them to ``path`` (``consequence``: the
    failure only says that another Horovod rank failed, see ``is_consequence``), or None when
    there is no readable record (no file, or something that is not a status). Also reads the
    older format, a bare integer. (A plain tuple: this module stays light in the script's process.)"""
    import json

    try:
        with open(path, "rb") as f:
            value = json.loads(f.read(MAX_RECORD).decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # missing, unreadable, not UTF-8, not JSON
        return None
    if not isinstance(value, dict):
        value = {"status": value}
    status, reason = value.get("status"), value.get("reason", "")
    if not isinstance(status, int) or isinstance(status, bool):
        return None
    return status, reason[:MAX_REASON] if isinstance(reason, str) else "", value.get("consequence") is True


def read_status(path):
    """The ``(status, reason)`` a child recorded in ``path``, or None (see ``read_record``)."""
    record = read_record(path)
    return None if record is None else record[:2]


def describe_exception(error):
    """``error`` as the last line of its traceback would name it: ``type: message`` (the type with
    its module unless it is a built-in one or the script's own), the message whole."""
    kind = type(error)
    name = getattr(kind, "__qualname__", kind.__name__)
    if kind.__module__ not in ("builtins", "__main__"):
        name = "{}.{}".format(kind.__module__, name)
    try:
        message = str(error)
    except Exception:  # a __str__ that fails: Python's traceback says the same
        message = "<exception str() failed>"
    return "{}: {}".format(name, message) if message else name


def status_of_exit(error):
    """The status Python itself would exit with for ``SystemExit(code)``."""
    code = error.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def print_user_traceback(error):
    """Print the traceback as Python would, without this runner's and runpy's frames."""
    import runpy
    import traceback

    tb = error.__traceback__
    # "<string>": the ``python -c`` code that started this runner (``user_code.runner_bootstrap``).
    ours = (os.path.abspath(__file__), os.path.abspath(runpy.__file__), "<frozen runpy>", "<string>")
    while tb is not None and _is_ours(tb.tb_frame.f_code.co_filename, ours):
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb)


def _is_ours(filename, ours):
    return filename in ours or os.path.abspath(filename) in ours


def run_path(path):
    """Run the Python file ``path`` as ``__main__``, as ``python path`` does. ``runpy.run_path``
    does the same, but importing runpy (with pkgutil and typing) delays every script's start by
    several milliseconds; it is still used for what only it handles (a directory, a zip file, a
    compiled file). ``__main__`` stays the script's module afterwards, as under ``python path``."""
    if not os.path.isfile(path) or not path.endswith(".py"):
        import runpy

        return runpy.run_path(path, run_name="__main__")
    import builtins

    path = os.path.abspath(path)  # as Python (3.9 and later) names the script in __file__ and tracebacks
    with open(path, "rb") as f:
        code = compile(f.read(), path, "exec", dont_inherit=True)  # reads a coding cookie as Python does
    main = type(sys)("__main__")
    main.__dict__.update(__file__=path, __cached__=None, __loader__=None, __package__=None, __spec__=None,
                         __builtins__=builtins)
    sys.modules["__main__"] = main
    exec(code, main.__dict__)


def run(argv):
    """Run the script or module named by ``argv`` -> (its exit status, whether its failure is a
    consequence of another Horovod rank's, the error that ended it or "")."""
    if argv[:1] == ["--module"]:
        import runpy

        target, rest = argv[1], argv[2:]
        sys.argv = [target] + rest
        run_it = lambda: runpy.run_module(target, run_name="__main__", alter_sys=True)  # noqa: E731
    else:
        target, rest = argv[0], argv[1:]
        sys.argv = [target] + rest
        sys.path[0] = os.path.dirname(os.path.abspath(target))
        run_it = lambda: run_path(target)  # noqa: E731
    try:
        run_it()
        return 0, False, ""
    except SystemExit as e:
        status = status_of_exit(e)
        # sys.exit("message"): Python prints the message and exits 1; the message is the error.
        return status, False, describe_exception(e) if status and not isinstance(e.code, int) else ""
    except KeyboardInterrupt as e:
        from .outcome import signal_status  # only now: the runner's start stays light

        print_user_traceback(e)
        return signal_status(SIGINT), False, describe_exception(e)
    except BaseException as e:  # whatever the script raised: report it the way Python does
        print_user_traceback(e)
        return 1, is_consequence(e), describe_exception(e)


def main():
    if len(sys.argv) < 2:
        print("usage: python -m mx_training_toolkit.runner SCRIPT|--module MODULE [ARGS...]", file=sys.stderr)
        sys.exit(2)
    status, consequence, error = run(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    record_status(status, reason=error, consequence=consequence)
    sys.exit(status)


if __name__ == "__main__":
    main()
