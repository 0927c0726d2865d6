"""Child-side: run a user script as ``__main__`` and record its exit status in a file.

Why: in a process that created a distributed kvstore, MXNet's shutdown ends the process with
status 0 whatever the script did (measured with mxnet 1.9.1: ``sys.exit(3)`` and an uncaught
exception both give 0). The launcher reads the recorded status instead.

    python -m mx_training_toolkit.runner SCRIPT.py [ARGS...]
    python -m mx_training_toolkit.runner --module MODULE [ARGS...]
"""

import os
import signal
import sys

STATUS_FILE_ENV = "MX_TRAINING_STATUS_FILE"


def record_status(status, environ=None):
    """Write ``status`` to the file the launcher named, if it named one."""
    path = (os.environ if environ is None else environ).get(STATUS_FILE_ENV)
    if not path:
        return
    try:
        with open(path, "w") as f:
            f.write(str(status))
    except OSError:
        pass


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
    ours = (os.path.abspath(__file__), os.path.abspath(runpy.__file__), "<frozen runpy>")
    while tb is not None and _is_ours(tb.tb_frame.f_code.co_filename, ours):
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb)


def _is_ours(filename, ours):
    return filename in ours or os.path.abspath(filename) in ours


def run(argv):
    """Run the script or module named by ``argv`` -> its exit status."""
    import runpy

    if argv[:1] == ["--module"]:
        target, rest = argv[1], argv[2:]
        sys.argv = [target] + rest
        run_it = lambda: runpy.run_module(target, run_name="__main__", alter_sys=True)  # noqa: E731
    else:
        target, rest = argv[0], argv[1:]
        sys.argv = [target] + rest
        sys.path[0] = os.path.dirname(os.path.abspath(target))
        run_it = lambda: runpy.run_path(target, run_name="__main__")  # noqa: E731
    try:
        run_it()
        return 0
    except SystemExit as e:
        return status_of_exit(e)
    except KeyboardInterrupt as e:
        print_user_traceback(e)
        return 128 + signal.SIGINT
    except BaseException as e:  # whatever the script raised: report it the way Python does
        print_user_traceback(e)
        return 1


def main():
    if len(sys.argv) < 2:
        print("usage: python -m mx_training_toolkit.runner SCRIPT|--module MODULE [ARGS...]", file=sys.stderr)
        sys.exit(2)
    status = run(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    record_status(status)
    sys.exit(status)


if __name__ == "__main__":
    main()
