"""How long the launchers need after the stop grace: SIGKILL, reap, write the outcome, exit.

The platform SIGTERMs every host's ``train`` and SIGKILLs the container 120 s later, so the stop
grace (``MX_TRAINING_STOP_GRACE_SECONDS``) must leave the launchers the time measured here. Each
scenario runs a job through ``mx-train`` whose workers ignore SIGTERM (the worst case: everything
is killed at the grace), sends SIGTERM to every host's launcher at once, as the platform does, and
measures, per host, when the failure file was written and when the launcher exited, minus the
grace. Scenarios: a slow script on 1 host, a 2-host parameter-server job, a 2-host x 2-rank
Horovod job (skipped without Horovod). With --load (the default), a busy loop runs on every core.

    .venv/bin/python benchmarks/stop_path.py [--grace 5] [--repeats 3] [--no-load] [--smoke]
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import common

IGNORE = ("import signal, time\n"
          "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
          "signal.signal(signal.SIGINT, signal.SIG_IGN)\n")
READY = "print('stop_path: ready', flush=True)\ntime.sleep(3600)\n"
SCRIPTS = {
    "slow": IGNORE + READY,
    "ps": IGNORE + ("import mxnet as mx\n"
                    "kv = mx.kv.create('dist_sync')\n"
                    "kv.init('w', mx.nd.zeros((2, 3)))\n"
                    "kv.push('w', mx.nd.ones((2, 3)))\n"
                    "out = mx.nd.zeros((2, 3))\n"
                    "kv.pull('w', out=out)\n"
                    "out.wait_to_read()\n") + READY,
    "horovod": IGNORE + ("import horovod.mxnet as hvd\n"
                         "import mxnet as mx\n"
                         "hvd.init()\n"
                         "hvd.allreduce(mx.nd.ones((3,)), name='x').wait_to_read()\n") + READY,
}
SCENARIOS = [  # (name, script, mx-train arguments, workers in all)
    ("slow script, 1 host", "slow", ["--hosts", "1"], 1),
    ("parameter server, 2 hosts", "ps", ["--hosts", "2", "--parameter-server"], 2),
    ("Horovod, 2 hosts x 2 ranks", "horovod", ["--hosts", "2", "--horovod", "2"], 4),
]


def launchers_under(root):
    """pid -> host of the ``train`` launchers whose base directory is under ``root``."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/{}/cmdline".format(pid), "rb") as f:
                if b"mx_training_toolkit.training" not in f.read():
                    continue
        except OSError:
            continue
        base = (common.read_environ(pid) or {}).get(b"SAGEMAKER_BASE_DIR", b"").decode()
        if base.startswith(root):
            found[int(pid)] = os.path.basename(base)
    return found


def run_once(code, entry, extra, workers, grace, root):
    env = dict(os.environ, MX_TRAINING_STOP_GRACE_SECONDS=str(grace))
    argv = common.mx_train_argv() + ["--code", code, "--entry-point", entry, "--base-dir", root] + extra
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    lines, ready = [], 0
    while ready < workers:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("mx-train ended before the job was ready:\n" + b"".join(lines).decode()[-3000:])
        lines.append(line)
        ready += b"stop_path: ready" in line
    rest = []
    reader = threading.Thread(target=lambda: rest.extend(proc.stdout), daemon=True)
    reader.start()
    launchers = launchers_under(root)
    signalled = time.time()
    for pid in launchers:
        os.kill(pid, signal.SIGTERM)
    exited = {}
    while len(exited) < len(launchers):
        for pid, host in launchers.items():
            if host not in exited and not _alive(pid):
                exited[host] = time.time()
        time.sleep(0.005)
    proc.wait(timeout=300)
    reader.join(5)
    rows = []
    for host in sorted(exited):
        written = os.stat(os.path.join(root, host, "output", "failure")).st_mtime
        rows.append((host, written - signalled - grace, exited[host] - signalled - grace))
    return rows


def _alive(pid):
    try:
        with open("/proc/{}/stat".format(pid)) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grace", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-load", dest="load", action="store_false")
    parser.add_argument("--smoke", action="store_true",
                        help=common.SMOKE_HELP + ": a 1 s grace, 1 run of each scenario, no busy loop")
    args = parser.parse_args()
    if args.smoke:
        args.grace, args.repeats, args.load = 1.0, 1, False
    load = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)] \
        if args.load else []
    try:
        import importlib.util

        print("| scenario (grace {:g} s{}) | outcome written, s after the grace (max of hosts) | launcher exited, s "
              "after the grace (max of hosts) |".format(args.grace, ", a busy loop per core" if load else ""))
        print("|---|--:|--:|")
        worst = 0.0
        with tempfile.TemporaryDirectory(prefix="stop-path-") as work:
            for name, script, extra, workers in SCENARIOS:
                if script == "horovod" and importlib.util.find_spec("horovod") is None:
                    print("| {} | skipped: Horovod is not installed | |".format(name))
                    continue
                code = os.path.join(work, script)
                os.makedirs(code)
                with open(os.path.join(code, "train.py"), "w") as f:
                    f.write(SCRIPTS[script])
                written, exited = [], []
                for i in range(args.repeats):
                    rows = run_once(code, "train.py", extra, workers, args.grace, os.path.join(work, "{}-{}".format(
                        script, i)))
                    written.append(max(r[1] for r in rows))
                    exited.append(max(r[2] for r in rows))
                worst = max(worst, max(exited))
                print("| {} | {} | {} |".format(name, ", ".join("{:.2f}".format(t) for t in written),
                                                ", ".join("{:.2f}".format(t) for t in exited)), flush=True)
        print("worst: every launcher exited {:.2f} s after the grace".format(worst))
        if args.smoke:
            print(common.SMOKE_NOTE)
    finally:
        for p in load:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
