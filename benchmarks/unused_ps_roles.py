"""What the parameter server costs a job that never uses it, measured with ``mx-train``.

A typical script-mode job turns the parameter server on but trains with a local kvstore (and so
does every multi-host legacy job whose script creates no dist kvstore): its scheduler and servers
wait for workers that never come. The launcher gives them ``MX_TRAINING_PS_LINGER_SECONDS`` once
every worker of the job is done, then stops them. This runs the same trivial job on N emulated
hosts with and without ``--parameter-server``, interleaved, and prints the wall times and their
difference (the baseline is the job without the parameter server, measured in the same run).

    .venv/bin/python benchmarks/unused_ps_roles.py [--hosts 2] [--repeats 3] [--smoke]
"""

import argparse
import os
import subprocess
import tempfile
import time

import common

SCRIPT = "import time\nprint('trained with a local kvstore', flush=True)\ntime.sleep(0.5)\n"


def run_once(code, hosts, parameter_server, root):
    argv = common.mx_train_argv() + ["--code", code, "--hosts", str(hosts), "--base-dir", root]
    if parameter_server:
        argv.append("--parameter-server")
    began = time.monotonic()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=600)
    elapsed = time.monotonic() - began
    if proc.returncode != 0:
        raise SystemExit("mx-train failed ({}):\n{}".format(proc.returncode, proc.stderr.decode()[-3000:]))
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help=common.SMOKE_HELP + ": 1 run of each, 2 hosts")
    args = parser.parse_args(argv)
    if args.smoke:
        args.hosts, args.repeats = 2, 1
    times = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="unused-ps-") as work:
        code = os.path.join(work, "code")
        os.makedirs(code)
        with open(os.path.join(code, "train.py"), "w") as f:
            f.write(SCRIPT)
        for i in range(args.repeats):
            for ps in (False, True):
                times[ps].append(run_once(code, args.hosts, ps, os.path.join(work, "run-{}-{}".format(i, ps))))
    without, with_ps = common.median(times[False]), common.median(times[True])
    if args.smoke:
        print(common.SMOKE_NOTE)
    print("| {}-host job, median of {} | wall time, s |".format(args.hosts, args.repeats))
    print("|---|--:|")
    print("| without the parameter server | {:.2f} |".format(without))
    print("| with unused parameter-server roles | {:.2f} |".format(with_ps))
    print("| difference | {:+.2f} |".format(with_ps - without))
    print("runs without: {}".format(", ".join("{:.2f}".format(t) for t in times[False])))
    print("runs with:    {}".format(", ".join("{:.2f}".format(t) for t in times[True])))


if __name__ == "__main__":
    main()
