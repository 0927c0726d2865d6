"""How fast one host's failure ends every host of a big job: ``mx-train --hosts N`` (64 by
default), every script waits until all N run, then the one on the middle host exits with status 3
and the others sleep. Measured: from that exit to the last launcher's failure file, and to
``mx-train``'s own end (every launcher exited). Every host's failure file's first line is checked.

    .venv/bin/python benchmarks/failure_fanout.py [--hosts 64] [--runs 3] [--smoke]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

SCRIPT = """import argparse, os, sys, time
p = argparse.ArgumentParser()
p.add_argument("--ready_dir")
p.add_argument("--failing")
p.add_argument("--hosts", type=int)
args = p.parse_args()
host = os.environ["SM_CURRENT_HOST"]
open(os.path.join(args.ready_dir, host), "w").close()
if host != args.failing:
    time.sleep(600)
while sum(name.startswith("algo-") for name in os.listdir(args.ready_dir)) < args.hosts:
    time.sleep(0.01)
with open(os.path.join(args.ready_dir, "failed-at"), "w") as f:
    f.write(repr(time.time()))
sys.exit(3)
"""


def one_run(hosts, work):
    code, ready, base = work / "code", work / "ready", work / "hosts"
    for d in (code, ready):
        d.mkdir(parents=True)
    (code / "train.py").write_text(SCRIPT)
    failing = "algo-{}".format(hosts // 2 + 1)
    argv = [os.path.join(os.path.dirname(sys.executable), "mx-train"), "--code", str(code), "--hosts", str(hosts),
            "--base-dir", str(base), "--hp", "ready_dir=" + str(ready), "--hp", "failing=" + failing,
            "--hp", "hosts={}".format(hosts)]
    env = dict(os.environ, MX_TRAINING_HOST_WAIT_SECONDS="600")
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, timeout=900)
    ended = time.time()
    failed_at = float((ready / "failed-at").read_text())
    files = [base / "algo-{}".format(i + 1) / "output" / "failure" for i in range(hosts)]
    own = "User script failed: train.py on {} exited with status 3".format(failing)
    for path in files:
        first = path.read_text().splitlines()[0]
        expected = own if path.parent.parent.name == failing else "Job failed on {}: {}".format(failing, own)
        assert first == expected, (path, first)
    assert proc.returncode == 3, proc.stderr.decode(errors="replace")[-3000:]
    last_file = max(path.stat().st_mtime for path in files)
    return last_file - failed_at, ended - failed_at


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help=common.SMOKE_HELP)
    args = parser.parse_args()
    if args.smoke:
        args.hosts, args.runs = 4, 1
    rows = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="fanout-") as work:
            files, ended = one_run(args.hosts, Path(work))
        rows.append((files, ended))
        print("run {}: last failure file {:.2f} s, mx-train ended {:.2f} s after the failure".format(
            run + 1, files, ended), file=sys.stderr)
    if args.smoke:
        print(common.SMOKE_NOTE)
    print("| hosts | runs | last failure file, s (median, max) | every launcher exited, s (median, max) |")
    print("|---|---|---|---|")
    print("| {} | {} | {:.2f}, {:.2f} | {:.2f}, {:.2f} |".format(
        args.hosts, args.runs, common.median(r[0] for r in rows), max(r[0] for r in rows),
        common.median(r[1] for r in rows), max(r[1] for r in rows)))


if __name__ == "__main__":
    main()
