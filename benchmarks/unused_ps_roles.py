"""What the parameter server costs a job that never uses it, measured with ``mx-train``.

A typical script-mode job turns the parameter server on but trains with a local kvstore (and so
does every multi-host legacy job whose script creates no dist kvstore): its scheduler and servers
wait for workers that never come. The launcher gives them ``MX_TRAINING_PS_LINGER_SECONDS`` once
every worker of the job is done, then stops them. This runs the same trivial job on N emulated
hosts with and without ``--parameter-server``, interleaved, and prints the wall times and their
difference (the baseline is the job without the parameter server, measured in the same run).

    .venv/bin/python benchmarks/unused_ps_roles.py [--hosts 2] [--repeats 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

SCRIPT = "import time\nprint('trained with a local kvstore', flush=True)\ntime.sleep(0.5)\n"


def mx_train():
    here = os.path.dirname(sys.executable)
    path = os.path.join(here, "mx-train")
    return [path] if os.path.exists(path) else [sys.executable, "-c", "from mx_training_toolkit.local import main; main()"]


def run_once(code, hosts, parameter_server, root):
    argv = mx_train() + ["--code", code, "--hosts", str(hosts), "--base-dir", root]
    if parameter_server:
        argv.append("--parameter-server")
    began = time.monotonic()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    elapsed = time.monotonic() - began
    if proc.returncode != 0:
        raise SystemExit("mx-train failed ({}):\n{}".format(proc.returncode, proc.stderr.decode()[-3000:]))
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="unused-ps-") as work:
        code = os.path.join(work, "code")
        os.makedirs(code)
        with open(os.path.join(code, "train.py"), "w") as f:
            f.write(SCRIPT)
        for i in range(args.repeats):
            for ps in (False, True):
                times[ps].append(run_once(code, args.hosts, ps, os.path.join(work, "run-{}-{}".format(i, ps))))
    without, with_ps = statistics.median(times[False]), statistics.median(times[True])
    print("| {}-host job, median of {} | wall time, s |".format(args.hosts, args.repeats))
    print("|---|--:|")
    print("| without the parameter server | {:.2f} |".format(without))
    print("| with unused parameter-server roles | {:.2f} |".format(with_ps))
    print("| difference | {:+.2f} |".format(with_ps - without))
    print("runs without: {}".format(", ".join("{:.2f}".format(t) for t in times[False])))
    print("runs with:    {}".format(", ".join("{:.2f}".format(t) for t in times[True])))


if __name__ == "__main__":
    main()
