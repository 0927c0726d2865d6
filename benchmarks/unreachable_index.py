"""How long a job whose requirements.txt needs the package index takes to fail when the index
cannot be reached: a refused connection, a name that does not resolve (.invalid), a server that
accepts and never answers (all local: loopback servers started here). Each case runs ``train`` on a
one-host job with ``PIP_INDEX_URL`` pointing there and none of this machine's pip settings, and
reports the seconds to the exit, the exit status and the failure file's first line.

    .venv/bin/python benchmarks/unreachable_index.py [--train PATH] [--cap 400] [--smoke]

``--train``: another launcher's ``train`` (an older checkout's venv) to compare; ``--cap``: seconds
after which a case is stopped and reported as "still running" (pip alone retries for minutes).
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "test"))
from fake_index import SilentServer  # noqa: E402

CASES = ("refused", "unresolvable", "silent")


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_case(train, case, cap):
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="mxtt-bench-index-") as base:
        if case == "refused":
            where = "127.0.0.1:%d" % free_port()
        elif case == "unresolvable":
            where = "mxtt-no-such-index.invalid"
        else:
            where = "127.0.0.1:%d" % stack.enter_context(SilentServer()).port
        for sub in ("input/config", "code", "model", "output"):
            os.makedirs(os.path.join(base, sub))
        with open(os.path.join(base, "input/config/hyperparameters.json"), "w") as f:
            json.dump({"sagemaker_program": json.dumps("train.py")}, f)
        Path(base, "code", "train.py").write_text("print('ran')\n")
        Path(base, "code", "requirements.txt").write_text("mxtt-not-in-the-image==1.0\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k != "PYTHONPATH"}
        env.update(SAGEMAKER_BASE_DIR=base, PIP_CONFIG_FILE=os.devnull,
                   PIP_INDEX_URL="http://%s/simple/" % where)
        began = time.monotonic()
        proc = subprocess.Popen([train], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL)
        try:
            status = proc.wait(timeout=cap)
            seconds = time.monotonic() - began
        except subprocess.TimeoutExpired:
            status, seconds = None, time.monotonic() - began
            proc.terminate()  # train stops its pip (which runs in its own session) and exits
            proc.wait(timeout=150)
        failure = Path(base, "output", "failure")
        first = failure.read_text().splitlines()[0] if failure.exists() and failure.read_text() else ""
        return seconds, status, first


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", default=str(Path(sys.executable).parent / "train"))
    parser.add_argument("--cap", type=float, default=400.0)
    parser.add_argument("--smoke", action="store_true", help=common.SMOKE_HELP)
    args = parser.parse_args()
    cases = ("refused",) if args.smoke else CASES
    print("train: %s" % args.train)
    for case in cases:
        seconds, status, first = run_case(args.train, case, args.cap)
        shown = "still running, stopped at the cap" if status is None else "exit %d" % status
        print("%-13s %6.1f s  %s  %s" % (case, seconds, shown, first[:160]))
    if args.smoke:
        print(common.SMOKE_NOTE)


if __name__ == "__main__":
    main()
