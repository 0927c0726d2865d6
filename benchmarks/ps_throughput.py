"""Parameter-server launch: our launcher (``mx-train``) against a hand launch done the reference's way.

The same 2-host ``dist_sync`` job (an MLP on generated data) runs two ways on this machine:

* **ours**: ``mx-train --hosts 2 --parameter-server``: one ``train`` launcher per emulated host
  (127.0.0.2, 127.0.0.3), which starts and supervises scheduler, servers and the worker;
* **hand**: what the reference toolkit does: DMLC_* variables, ``python -c 'import mxnet'`` for the
  scheduler and one server per host, started with fire-and-forget ``Popen``, and ``python job.py`` as
  the worker on each host, with the same addresses and ``DMLC_NODE_HOST`` as ours.

Measured: training samples/s (both workers together, after a warm-up), seconds from launch to the end
of the first kvstore push/pull round-trip, and seconds from SIGKILL of the server on host 2
(mid-training) until every process of the job has exited (capped: the hand launch never exits).
Runs are interleaved and repeated; medians are printed, then a Markdown table.

    .venv/bin/python benchmarks/ps_throughput.py [--steps N] [--repeats K] [--no-kill] [--kill-wait S] [--smoke]
"""

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import common
from common import median

HOSTS = ("127.0.0.2", "127.0.0.3")  # the addresses mx-train gives algo-1 and algo-2
TAG = "PS_BENCH_TAG"  # every process of a run carries TAG=<run id>: how we find (and clean up) them
KILL_WAIT_CAP = 30.0  # --kill-wait's default

# The training job. It reads BENCH_LAUNCH_T (time.time() just before the launch) and writes its
# figures to BENCH_RESULT_DIR/rank-N.json; BENCH_RESULT_DIR/progress-N appears once warmed up.
JOB = r'''
import argparse
import json
import os
import time

import mxnet as mx
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=300)
parser.add_argument("--warmup", type=int, default=30)
parser.add_argument("--batch_size", type=int, default=128)
parser.add_argument("--features", type=int, default=256)
parser.add_argument("--hidden", type=int, default=512)
args, _ = parser.parse_known_args()
launched = float(os.environ["BENCH_LAUNCH_T"])
out_dir = os.environ["BENCH_RESULT_DIR"]


def report(rank, **figures):
    path = os.path.join(out_dir, "rank-{}.json".format(rank))
    data = {}
    if os.path.exists(path):
        with open(path) as f:
            data = json.load(f)
    data.update(figures)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)


kv = mx.kv.create("dist_sync")
probe = mx.nd.zeros((4,))
kv.init("probe", probe)
kv.push("probe", mx.nd.ones((4,)))
kv.pull("probe", out=probe)
probe.wait_to_read()
report(kv.rank, first_step_s=time.time() - launched, num_workers=kv.num_workers)

# 10 classes from a fixed random linear teacher; each worker has its own sample of the data.
classes = 10
rng = np.random.RandomState(1234)
teacher = rng.randn(args.features, classes).astype("float32")
rng = np.random.RandomState(kv.rank)
x = rng.randn(32 * args.batch_size, args.features).astype("float32")
y = (x @ teacher).argmax(axis=1).astype("float32")
data = mx.io.NDArrayIter(x, y, batch_size=args.batch_size, shuffle=True, last_batch_handle="discard")

net = mx.sym.Variable("data")
for i in range(2):
    net = mx.sym.Activation(mx.sym.FullyConnected(net, num_hidden=args.hidden, name="fc{}".format(i)),
                            act_type="relu")
net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(net, num_hidden=classes, name="out"), name="softmax")
mod = mx.mod.Module(net)
mod.bind(data.provide_data, data.provide_label)
mod.init_params(mx.init.Xavier())
mod.init_optimizer(kvstore=kv, optimizer="sgd", optimizer_params={"learning_rate": 0.1, "momentum": 0.9})


def batches():
    while True:
        data.reset()
        for batch in data:
            yield batch


metric = mx.metric.Accuracy()
feed = batches()
started = None
for step in range(args.steps):
    if step == args.warmup:
        mx.nd.waitall()
        started = time.time()
        open(os.path.join(out_dir, "progress-{}".format(kv.rank)), "w").close()
    batch = next(feed)
    mod.forward_backward(batch)
    mod.update()
    if step >= args.steps - 10:
        mod.update_metric(metric, batch.label)
mx.nd.waitall()
elapsed = time.time() - started
report(kv.rank, samples_per_s=(args.steps - args.warmup) * args.batch_size / elapsed,
       train_accuracy=metric.get()[1], steps=args.steps)
'''


# ---- processes ------------------------------------------------------------------------------------


def tagged_processes(tag=None):
    """{pid: environ} of live processes with DMLC_ROLE (and, if given, our run tag) in their environment."""
    return common.tagged_processes(TAG, tag, marker="DMLC_ROLE")


class Run:
    """One launch of the job in one mode; ``procs`` are the processes we started ourselves."""

    def __init__(self, root, mode, index, job_args):
        self.mode = mode
        self.tag, self.dir, self.results, self.log_path = common.make_run_dir(root, mode, index)
        self.job_args = job_args
        self.procs = []  # (name, Popen)

    def base_env(self):
        env = dict(os.environ)
        env.update({TAG: self.tag, "BENCH_RESULT_DIR": self.results, "PYTHONUNBUFFERED": "1"})
        return env

    def launch(self, code_dir):
        log = open(self.log_path, "ab")
        try:
            if self.mode == "ours":
                self._launch_ours(code_dir, log)
            else:
                self._launch_hand(code_dir, log)
        finally:
            log.close()

    def _launch_ours(self, code_dir, log):
        argv = [sys.executable, "-c", "from mx_training_toolkit.local import main; main()",
                "--code", code_dir, "--entry-point", "job.py", "--hosts", "2", "--parameter-server",
                "--base-dir", os.path.join(self.dir, "hosts")]
        argv += ["--hp={}={}".format(k, v) for k, v in self.job_args.items()]
        env = self.base_env()
        env["BENCH_LAUNCH_T"] = repr(time.time())
        self.procs.append(("mx-train", subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                                        stdin=subprocess.DEVNULL, start_new_session=True)))

    def _launch_hand(self, code_dir, log):
        """The reference toolkit's way: env vars, fire-and-forget role processes, the script as worker."""
        port = common.free_port()
        env = self.base_env()
        env["BENCH_LAUNCH_T"] = repr(time.time())
        env.update({"DMLC_PS_ROOT_URI": HOSTS[0], "DMLC_PS_ROOT_PORT": str(port), "PS_VERBOSE": "0",
                    "DMLC_NUM_SERVER": str(len(HOSTS)), "DMLC_NUM_WORKER": str(len(HOSTS))})
        argv = [sys.executable, os.path.join(code_dir, "job.py")] + self._cmd_args()

        def start(name, host, role, command):
            role_env = dict(env, DMLC_ROLE=role, DMLC_NODE_HOST=host)
            popen = subprocess.Popen(command, env=role_env, cwd=code_dir, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
            self.procs.append((name, popen))

        for i, host in enumerate(HOSTS):  # per host, in the order the reference's train does it
            if i == 0:
                start("scheduler", host, "scheduler", [sys.executable, "-c", "import mxnet"])
            start("server-{}".format(i + 1), host, "server", [sys.executable, "-c", "import mxnet"])
            start("worker-{}".format(i + 1), host, "worker", argv)

    def _cmd_args(self):
        out = []
        for k, v in self.job_args.items():
            out += ["--{}".format(k), str(v)]
        return out

    def job_pids(self):
        """The processes whose end is the job's end: mx-train for ours, the two workers for hand."""
        if self.mode == "ours":
            return [p for n, p in self.procs if n == "mx-train"]
        return [p for n, p in self.procs if n.startswith("worker")]

    def warmed_up(self):
        return all(os.path.exists(os.path.join(self.results, "progress-{}".format(r))) for r in (0, 1))

    def finished(self):
        return all(p.poll() is not None for p in self.job_pids())

    def figures(self):
        out = []
        for name in sorted(os.listdir(self.results)):
            if name.startswith("rank-") and name.endswith(".json"):
                with open(os.path.join(self.results, name)) as f:
                    out.append(json.load(f))
        return out

    def log_tail(self, lines=25):
        return common.log_tail(self.log_path, lines)

    def cleanup(self):
        """SIGKILL every process of this run (our children, their groups, anything tagged); reap ours."""
        common.stop_run(TAG, self.tag, [p for _name, p in self.procs])


# ---- the two measurements -------------------------------------------------------------------------


def watch_launchers(run, timeout):
    """Wait for the job's end -> CPU share (of one core) its launcher processes (tagged, no DMLC_ROLE:
    mx-train and the two ``train``; none for the hand launch) used during the timed training steps."""
    deadline = time.monotonic() + timeout
    start = end = None  # (wall time, {pid: cpu seconds}) when the timed steps began / ended
    while not run.finished():
        if time.monotonic() > deadline:
            raise RuntimeError("{}: the job did not finish within {:.0f} s\n{}".format(
                run.tag, timeout, run.log_tail()))
        if start is None or end is None:
            launchers = [pid for pid, env in tagged_processes(run.tag).items() if "DMLC_ROLE" not in env]
            cpu = {pid: common.cpu_seconds(pid) for pid in launchers}
            if start is None and run.warmed_up():
                start = (time.monotonic(), cpu)
            elif start is not None and all("samples_per_s" in f for f in run.figures()) and len(run.figures()) == 2:
                end = (time.monotonic(), cpu)
        time.sleep(0.1)
    if start is None or end is None:
        return None
    used = sum(end[1].get(pid) - c for pid, c in start[1].items() if c is not None and end[1].get(pid) is not None)
    return used / max(end[0] - start[0], 1e-9)


def throughput_run(root, mode, index, code_dir, job_args, timeout):
    run = Run(root, mode, index, job_args)
    try:
        run.launch(code_dir)
        launcher_cpu = watch_launchers(run, timeout)
        statuses = [p.returncode for p in run.job_pids()]
        figures = run.figures()
        if any(statuses) or len(figures) != 2 or not all("samples_per_s" in f for f in figures):
            raise RuntimeError("{}: the job failed (exit statuses {}, figures {})\n{}".format(
                run.tag, statuses, figures, run.log_tail()))
        return {"samples_per_s": sum(f["samples_per_s"] for f in figures),
                "first_step_s": max(f["first_step_s"] for f in figures),
                "accuracy": min(f["train_accuracy"] for f in figures), "launcher_cpu": launcher_cpu}
    finally:
        run.cleanup()


def kill_run(root, mode, index, code_dir, job_args, wait_cap, after_warmup=1.0):
    """SIGKILL the server on host 2 mid-training -> (seconds until every process of the job had exited,
    or None if not within ``wait_cap`` seconds; job exit statuses; processes left when the job ended)."""
    run = Run(root, mode, index, dict(job_args, steps=10 ** 7))
    try:
        run.launch(code_dir)
        deadline = time.monotonic() + 120
        while not run.warmed_up():
            if time.monotonic() > deadline or run.finished():
                raise RuntimeError("{}: training did not start\n{}".format(run.tag, run.log_tail()))
            time.sleep(0.05)
        time.sleep(after_warmup)
        servers = [pid for pid, env in tagged_processes(run.tag).items()
                   if env.get("DMLC_ROLE") == "server" and env.get("DMLC_NODE_HOST") == HOSTS[1]]
        if len(servers) != 1:
            raise RuntimeError("{}: expected one server on {}, found {}".format(run.tag, HOSTS[1], servers))
        os.kill(servers[0], signal.SIGKILL)
        killed = time.monotonic()
        job_exit = all_gone = None
        while time.monotonic() - killed < wait_cap:
            now = time.monotonic()
            if job_exit is None and run.finished():
                job_exit = now - killed
            if job_exit is not None and not tagged_processes(run.tag):
                all_gone = now - killed
                break
            time.sleep(0.05)
        statuses = [p.poll() for p in run.job_pids()]
        left = sorted(env.get("DMLC_ROLE", "?") for env in tagged_processes(run.tag).values())
        return {"exit_s": all_gone, "launcher_exit_s": job_exit, "statuses": statuses, "left": left}
    finally:
        run.cleanup()


# ---- report ---------------------------------------------------------------------------------------


def exit_cell(results, wait_cap):
    times = [r["exit_s"] for r in results]
    if all(t is not None for t in times):
        return "{:.1f}".format(median(times))
    if all(t is None for t in times):
        return "did not exit within {:.0f} s".format(wait_cap)
    return "{} of {} runs did not exit within {:.0f} s".format(sum(t is None for t in times), len(times), wait_cap)


def table(tp, kill, args):
    ours_sps = median([r["samples_per_s"] for r in tp["ours"]])
    hand_sps = median([r["samples_per_s"] for r in tp["hand"]])
    ours_first = median([r["first_step_s"] for r in tp["ours"]])
    hand_first = median([r["first_step_s"] for r in tp["hand"]])
    rows = [
        "| 2-host `dist_sync`, median of {} | ours (`mx-train`) | by hand (reference style) | ours / hand |".format(
            args.repeats),
        "|---|---|---|---|",
        "| training throughput, samples/s | {:.0f} | {:.0f} | {:.3f} |".format(ours_sps, hand_sps, ours_sps / hand_sps),
        "| launch -> first kvstore push/pull done, s | {:.2f} | {:.2f} | {:+.2f} s |".format(
            ours_first, hand_first, ours_first - hand_first),
    ]
    if kill["ours"]:
        rows.append("| server on host 2 SIGKILLed -> every process exited, s | {} | {} | |".format(
            exit_cell(kill["ours"], args.kill_wait), exit_cell(kill["hand"], args.kill_wait)))
    return "\n".join(rows)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=800, help="training steps per worker (default 800)")
    p.add_argument("--warmup", type=int, default=80, help="steps not timed (default 80)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3, help="runs of each mode (default 3)")
    p.add_argument("--no-kill", action="store_true", help="skip the server-kill measurement")
    p.add_argument("--kill-wait", type=float, default=KILL_WAIT_CAP,
                   help="after the server kill, wait at most this long for every process to exit (default {:.0f} s; "
                        "the hand launch never exits)".format(KILL_WAIT_CAP))
    p.add_argument("--smoke", action="store_true",
                   help=common.SMOKE_HELP + ": 1 repeat of 30 steps (10 warm-up), the kill with a 5 s wait")
    args = p.parse_args(argv)
    if args.smoke:
        args.steps, args.warmup, args.repeats, args.kill_wait = 30, 10, 1, 5.0
    if args.steps <= args.warmup:
        p.error("--steps must be larger than --warmup")
    return args


def mxnet_version():
    import mxnet
    return mxnet.__version__


def main(argv=None):
    args = parse_args(argv)
    missing = [m for m in ("mxnet", "mx_training_toolkit") if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit("run this with the project's virtual environment (.venv/bin/python): missing {}".format(
            ", ".join(missing)))
    stray = tagged_processes()
    if stray:
        print("note: {} process(es) with DMLC_ROLE already running before the benchmark: {}".format(
            len(stray), sorted(stray)), file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    root = tempfile.mkdtemp(prefix="ps-bench-")
    began = time.monotonic()
    try:
        code_dir = common.write_job_code(root, JOB)
        job_args = {"steps": args.steps, "warmup": args.warmup, "batch_size": args.batch_size,
                    "hidden": args.hidden}
        tp = {"ours": [], "hand": []}
        kill = {"ours": [], "hand": []}
        for i in range(args.repeats):
            for mode in (("ours", "hand") if i % 2 == 0 else ("hand", "ours")):
                r = throughput_run(root, mode, i, code_dir, job_args, timeout=300)
                tp[mode].append(r)
                print("throughput {} #{}: {:.0f} samples/s, first kvstore step after {:.2f} s, "
                      "accuracy {:.2f}{}".format(
                    mode, i + 1, r["samples_per_s"], r["first_step_s"], r["accuracy"],
                    ", launchers' CPU while training {:.2%} of a core".format(r["launcher_cpu"])
                    if r["launcher_cpu"] is not None and mode == "ours" else ""), file=sys.stderr, flush=True)
        if not args.no_kill:
            for i in range(args.repeats):
                for mode in (("ours", "hand") if i % 2 == 0 else ("hand", "ours")):
                    r = kill_run(root, mode, i, code_dir, job_args, args.kill_wait)
                    kill[mode].append(r)
                    print("server kill {} #{}: every process exited after {}; job exit {} (statuses {}); "
                          "left at the end of the wait: {}".format(
                              mode, i + 1, "{:.2f} s".format(r["exit_s"]) if r["exit_s"] is not None else "no",
                              "{:.2f} s".format(r["launcher_exit_s"]) if r["launcher_exit_s"] is not None else "none",
                              r["statuses"], r["left"] or "nothing"), file=sys.stderr, flush=True)
        sys.stderr.flush()
        print()
        if args.smoke:
            print(common.SMOKE_NOTE)
        print("MXNet {}, {} CPU(s); MLP {}-{}-{}-10, batch {} per worker, {} steps ({} warm-up); "
              "benchmark took {:.0f} s".format(mxnet_version(), os.cpu_count(), 256, args.hidden, args.hidden,
                                               args.batch_size, args.steps, args.warmup, time.monotonic() - began))
        print()
        print(table(tp, kill, args))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        left = tagged_processes()
        ours = {pid: env for pid, env in left.items() if env.get(TAG, "")}
        common.kill(ours)
        print("\ncleanup: {} process(es) with DMLC_ROLE left{}".format(
            len(left), " (not started by this benchmark: {})".format(sorted(set(left) - set(ours))) if left else ""),
            file=sys.stderr)


if __name__ == "__main__":
    main()
