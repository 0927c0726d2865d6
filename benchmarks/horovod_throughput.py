"""Horovod launch: our launcher (``mx-train --horovod 1``) against ``horovodrun``, and the parameter server.

The same 2-rank Gluon job (an MLP on generated data, the same model, batch size and number of steps)
runs three ways on this machine, on loopback only:

* **ours**: ``mx-train --hosts 2 --horovod 1``: one ``train`` launcher per emulated host
  (127.0.0.2, 127.0.0.3); the first also runs the Gloo rendezvous; each starts one rank (no mpirun);
* **horovodrun**: the reference style of launch, started by hand: ``horovodrun --gloo -np 2
  -H localhost:2 --network-interface lo python job.py ...`` (no ssh: both ranks on localhost);
* **ps**: the same model with the parameter server: ``mx-train --hosts 2 --parameter-server``, a
  ``gluon.Trainer`` on a ``dist_sync`` kvstore (optimizer on the servers, as Gluon does by default).

Every variant gets the same environment: ``OMP_NUM_THREADS`` and ``MXNET_CPU_WORKER_NTHREADS``
(``--threads``, default 1: two ranks on a 2-core machine), ``HOROVOD_GLOO_IFACE=lo``,
``PYTHONUNBUFFERED=1``. The training script times the steps after a warm-up itself (``mx.nd.waitall()``
at both ends) and writes its figures to a result file per rank; samples/s are both ranks' together.
Runs are interleaved (the order of the variants rotates from one repeat to the next) and repeated.
Printed: each run's figures, with the machine's load during its timed steps, in cores: what the whole
machine used (``/proc/stat``: processes, irq and softirq), what the ranks used, what the launchers used
(``mx-train``, ``train``, the rendezvous process; ``horovodrun``, its helper processes and shells),
ps-lite's roles, the rest ("other": other work on the machine; about -0.05 when there is none, the
difference between the ranks' own clocks and the kernel's tick counts), and steal (the hypervisor's
other guests); then per variant the median samples/s with min-max, the ratio of the medians to
horovodrun's, the median (min-max) of the run-by-run ratios (each run against the horovodrun run of
the same round), the median of the quiet runs, and the median wall time of a whole run (launch,
imports, rendezvous, training, exit).

The machine may be shared, and it is a VM: other work and the hypervisor's other guests take CPU
from the ranks, and the two ranks step in lockstep, so a stall of either slows both (measured here:
about 2,000 samples/s, 12 %, lost per 0.1 core of steal). So before each run the benchmark waits (at
most ``--quiet-wait`` seconds) for 2 s with the machine busy under ``--quiet-threshold`` cores and
steal under ``--steal-threshold``; a run during whose timed steps other work or steal went over those
is disturbed: printed, not counted, and run again (at most ``--retries`` times; the last try counts
whatever it is).

``--variants`` may add ``horovodrun-2hosts``, a diagnostic: horovodrun with ours' topology (``-H
localhost:1,127.0.0.1:1``, two "hosts" of one rank, both local, so ``HOROVOD_LOCAL_SIZE=1``,
``HOROVOD_CROSS_SIZE=2``), which tells a topology effect from a launcher effect. A Markdown table
comes last.

    .venv/bin/python benchmarks/horovod_throughput.py [--steps N] [--warmup N] [--repeats K]
        [--batch-size B] [--hidden H] [--threads T] [--log-every N] [--quiet-threshold CORES]
        [--steal-threshold CORES] [--quiet-wait SECONDS] [--retries N]
        [--variants ours,horovodrun,ps[,horovodrun-2hosts]] [--smoke]
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
from common import CLOCK_TICKS, cpu_seconds, median

TAG = "HVD_BENCH_TAG"  # every process of a run carries TAG=<run id>: how we find (and clean up) them
VARIANTS = ("ours", "horovodrun", "ps")
# A diagnostic, not run by default: horovodrun with ours' topology (2 "hosts" of 1 rank, both local:
# HOROVOD_LOCAL_SIZE=1, HOROVOD_CROSS_SIZE=2), to tell a topology effect from a launcher effect.
EXTRA_VARIANTS = ("horovodrun-2hosts",)

# The training job, for both Horovod (--mode horovod) and the parameter server (--mode ps). It writes
# BENCH_RESULT_DIR/progress-R (once warmed up, with its pid) and BENCH_RESULT_DIR/rank-R.json.
JOB = r'''
import argparse
import json
import os
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon

parser = argparse.ArgumentParser()
parser.add_argument("--mode", choices=("horovod", "ps"), required=True)
parser.add_argument("--steps", type=int, default=1000)
parser.add_argument("--warmup", type=int, default=100)
parser.add_argument("--batch_size", type=int, default=128)
parser.add_argument("--features", type=int, default=256)
parser.add_argument("--hidden", type=int, default=512)
parser.add_argument("--log_every", type=int, default=100)
args, _ = parser.parse_known_args()
out_dir = os.environ["BENCH_RESULT_DIR"]


def machine_jiffies():
    """The machine's first 8 /proc/stat counters (user nice system idle iowait irq softirq steal),
    then the number of processes created since boot."""
    with open("/proc/stat") as f:
        lines = f.read().splitlines()
    forks = [int(line.split()[1]) for line in lines if line.startswith("processes ")]
    return [int(v) for v in lines[0].split()[1:9]] + forks


def write_json(path, data):
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)


if args.mode == "horovod":
    import horovod.mxnet as hvd

    hvd.init()
    rank, size = hvd.rank(), hvd.size()
else:
    kv = mx.kv.create("dist_sync")  # what gluon.Trainer(kvstore="dist_sync") creates; made here for its rank
    rank, size = kv.rank, kv.num_workers

# 10 classes from a fixed random linear teacher; each rank has its own sample of the data.
classes = 10
teacher = np.random.RandomState(1234).randn(args.features, classes).astype("float32")
rng = np.random.RandomState(rank)
batches = []
for _ in range(32):
    x = rng.randn(args.batch_size, args.features).astype("float32")
    batches.append((mx.nd.array(x), mx.nd.array((x @ teacher).argmax(axis=1).astype("float32"))))

mx.random.seed(42)
net = gluon.nn.HybridSequential()
net.add(gluon.nn.Dense(args.hidden, activation="relu", in_units=args.features),
        gluon.nn.Dense(args.hidden, activation="relu", in_units=args.hidden),
        gluon.nn.Dense(classes, in_units=args.hidden))
net.initialize(mx.init.Xavier())
net.hybridize()
params = net.collect_params()
optimizer_params = {"learning_rate": 0.05, "momentum": 0.9}
if args.mode == "horovod":
    hvd.broadcast_parameters(params, root_rank=0)
    trainer = hvd.DistributedTrainer(params, "sgd", optimizer_params)
else:
    trainer = gluon.Trainer(params, "sgd", optimizer_params, kvstore=kv)
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()

started = cpu0 = jiffies0 = None
for step in range(args.steps):
    if step == args.warmup:
        mx.nd.waitall()
        started, cpu0, jiffies0 = time.time(), time.process_time(), machine_jiffies()
        write_json(os.path.join(out_dir, "progress-{}".format(rank)), {"pid": os.getpid()})
    data, label = batches[step % len(batches)]
    with autograd.record():
        loss = loss_fn(net(data), label)
    loss.backward()
    trainer.step(args.batch_size)
    if args.log_every and (step + 1) % args.log_every == 0:
        print("rank {} step {} loss {:.4f}".format(rank, step + 1, loss.mean().asscalar()), flush=True)
mx.nd.waitall()
ended, cpu1, jiffies1 = time.time(), time.process_time(), machine_jiffies()
correct = sum(float((net(d).argmax(axis=1) == l).sum().asscalar()) for d, l in batches[:8])
write_json(os.path.join(out_dir, "rank-{}.json".format(rank)), {
    "rank": rank, "size": size, "pid": os.getpid(), "elapsed_s": ended - started,
    "samples_per_s": (args.steps - args.warmup) * args.batch_size / (ended - started),
    "cpu_s": cpu1 - cpu0, "machine_jiffies": [b - a for a, b in zip(jiffies0, jiffies1)],
    "train_accuracy": correct / (8 * args.batch_size),
    "threads": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS")},
})
'''


# ---- processes ------------------------------------------------------------------------------------


def tagged_processes(tag=None):
    """{pid: environ} of live processes with our TAG (equal to ``tag`` when given) in their environment."""
    return common.tagged_processes(TAG, tag)


def command_name(pid):
    try:
        with open("/proc/{}/cmdline".format(pid), "rb") as f:
            words = [w.decode(errors="replace") for w in f.read().split(b"\0") if w]
    except OSError:
        return "?"
    text = " ".join(os.path.basename(w) if i == 0 else w for i, w in enumerate(words))
    return text[:60]


class Run:
    """One launch of the job in one variant; ``proc`` is the process we started ourselves."""

    def __init__(self, root, variant, index, job_args, threads):
        self.variant = variant
        self.tag, self.dir, self.results, self.log_path = common.make_run_dir(root, variant, index)
        self.job_args = job_args
        self.threads = threads
        self.proc = None

    def env(self):
        env = dict(os.environ)
        env.update({TAG: self.tag, "BENCH_RESULT_DIR": self.results, "PYTHONUNBUFFERED": "1",
                    "OMP_NUM_THREADS": str(self.threads), "MXNET_CPU_WORKER_NTHREADS": str(self.threads),
                    "HOROVOD_GLOO_IFACE": "lo"})
        return env

    def argv(self, code_dir):
        mode = "ps" if self.variant == "ps" else "horovod"
        if self.variant.startswith("horovodrun"):
            script = [sys.executable, os.path.join(code_dir, "job.py"), "--mode", mode]
            for k, v in self.job_args.items():
                script += ["--{}".format(k), str(v)]
            hosts = "localhost:1,127.0.0.1:1" if self.variant == "horovodrun-2hosts" else "localhost:2"
            return [common.venv_tool("horovodrun"), "--gloo", "-np", "2", "-H", hosts,
                    "--network-interface", "lo"] + script
        argv = [common.venv_tool("mx-train") or sys.executable, "--code", code_dir, "--entry-point", "job.py",
                "--hosts", "2", "--base-dir", os.path.join(self.dir, "hosts"), "--hp=mode={}".format(mode)]
        if argv[0] == sys.executable:
            argv[1:1] = ["-c", "from mx_training_toolkit.local import main; main()"]
        argv += ["--horovod", "1"] if self.variant == "ours" else ["--parameter-server"]
        return argv + ["--hp={}={}".format(k, v) for k, v in self.job_args.items()]

    def launch(self, code_dir):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv(code_dir), env=self.env(), cwd=code_dir, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def progress(self):
        out = []
        for rank in (0, 1):
            try:
                with open(os.path.join(self.results, "progress-{}".format(rank))) as f:
                    out.append(json.load(f)["pid"])
            except (OSError, ValueError):
                return None
        return out

    def figures(self):
        out = []
        for rank in (0, 1):
            try:
                with open(os.path.join(self.results, "rank-{}.json".format(rank))) as f:
                    out.append(json.load(f))
            except (OSError, ValueError):
                pass
        return out

    def log_tail(self, lines=30):
        return common.log_tail(self.log_path, lines)

    def log_lines(self):
        try:
            with open(self.log_path, "rb") as f:
                return sum(1 for _ in f)
        except OSError:
            return 0

    def cleanup(self):
        """SIGKILL every process of this run (our child's group, anything tagged); reap ours."""
        common.stop_run(TAG, self.tag, [self.proc] if self.proc is not None else [])


def helper_cpu(run, ranks):
    """{pid: (name, cpu seconds)} of this run's processes other than the ranks and ps-lite's roles:
    the launchers (mx-train, train, the rendezvous; horovodrun, its middlemen and shells)."""
    out = {}
    for pid, env in tagged_processes(run.tag).items():
        if pid in ranks or env.get("DMLC_ROLE") in ("server", "scheduler"):
            continue
        cpu = cpu_seconds(pid)
        if cpu is not None:
            out[pid] = (command_name(pid), cpu)
    return out


def ps_role_cpu(run):
    return {pid: cpu_seconds(pid) for pid, env in tagged_processes(run.tag).items()
            if env.get("DMLC_ROLE") in ("server", "scheduler")}


def throughput_run(root, variant, index, code_dir, job_args, threads, timeout):
    run = Run(root, variant, index, job_args, threads)
    try:
        began = time.monotonic()
        run.launch(code_dir)
        start = end = None  # (monotonic, helpers' cpu, ps roles' cpu) when the timed steps began / ended
        while run.proc.poll() is None:
            if time.monotonic() - began > timeout:
                raise RuntimeError("{}: the job did not finish within {:.0f} s\n{}".format(
                    run.tag, timeout, run.log_tail()))
            if start is None:
                ranks = run.progress()
                if ranks is not None:
                    start = (time.monotonic(), helper_cpu(run, ranks), ps_role_cpu(run))
            elif end is None and len(run.figures()) == 2:
                end = (time.monotonic(), helper_cpu(run, ranks), ps_role_cpu(run))
            time.sleep(0.05)
        wall = time.monotonic() - began
        figures = run.figures()
        if run.proc.returncode != 0 or len(figures) != 2:
            raise RuntimeError("{}: the job failed (exit status {}, figures {})\n{}".format(
                run.tag, run.proc.returncode, figures, run.log_tail()))
        result = {"samples_per_s": sum(f["samples_per_s"] for f in figures), "wall_s": wall,
                  "train_s": max(f["elapsed_s"] for f in figures),
                  "accuracy": min(f["train_accuracy"] for f in figures), "log_lines": run.log_lines()}
        # The machine's load over the timed steps (rank 0's window; the ranks step in lockstep).
        f0 = figures[0]
        window = f0["elapsed_s"]
        user, nice, system, _idle, _iowait, irq, softirq, steal, forks = f0["machine_jiffies"]
        result["forks"] = forks  # processes created on the machine during the timed steps
        # What the machine's processes and interrupts used (irq and softirq: the loopback traffic
        # among them), and the time the hypervisor gave to others (steal: load from outside this VM).
        result["machine_cores"] = (user + nice + system + irq + softirq) / CLOCK_TICKS / window
        result["steal_cores"] = steal / CLOCK_TICKS / window
        result["ranks_cores"] = sum(f["cpu_s"] for f in figures) / window
        result["launcher_cores"] = result["ps_cores"] = None
        if start is not None and end is not None:
            span = end[0] - start[0]
            used = sum(end[1][pid][1] - c for pid, (_n, c) in start[1].items() if pid in end[1])
            result["launcher_cores"] = used / span
            result["launchers"] = sorted({n for n, _c in start[1].values()})
            if variant == "ps":
                result["ps_cores"] = sum(end[2][p] - c for p, c in start[2].items()
                                         if c is not None and end[2].get(p) is not None) / span
        accounted = result["ranks_cores"] + (result["launcher_cores"] or 0) + (result["ps_cores"] or 0)
        result["other_cores"] = result["machine_cores"] - accounted
        return result
    finally:
        run.cleanup()


# ---- report ---------------------------------------------------------------------------------------


def spread(values):
    return "{:.0f}-{:.0f}".format(min(values), max(values)) if values else ""


def is_quiet(run, args):
    """Whether, during the timed steps, other work on this machine and the hypervisor's other guests
    (steal) stayed under their thresholds."""
    return run["other_cores"] < args.quiet_threshold and run["steal_cores"] < args.steal_threshold


def paired_ratios(results, variant, base="horovodrun"):
    """variant / base for each repeat: the two ran in the same round, close in time."""
    return [a["samples_per_s"] / b["samples_per_s"] for a, b in zip(results[variant], results[base])]


LABELS = {"ours": "ours (`mx-train --hosts 2 --horovod 1`)",
          "horovodrun": "`horovodrun --gloo -np 2 -H localhost:2`",
          "horovodrun-2hosts": "`horovodrun --gloo -np 2 -H localhost:1,127.0.0.1:1` (diagnostic)",
          "ps": "parameter server (`mx-train --hosts 2 --parameter-server`, `dist_sync`)"}


def table(results, discarded, args):
    sps = {v: [r["samples_per_s"] for r in results[v]] for v in args.variants}
    quiet = {v: [r["samples_per_s"] for r in results[v] if is_quiet(r, args)] for v in args.variants}
    med = {v: median(sps[v]) for v in args.variants}
    qmed = {v: median(quiet[v]) for v in args.variants}
    base, qbase = med.get("horovodrun"), qmed.get("horovodrun")
    rows = ["| 2 ranks, Gluon MLP, {} runs each | samples/s (both ranks), median | min-max | / horovodrun "
            "(ratio of medians) | / horovodrun, run by run: median (min-max) | quiet runs: n, median samples/s "
            "| / horovodrun | launchers' CPU, cores | whole run, s | disturbed runs run again |".format(args.repeats),
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for v in args.variants:
        launcher = [r["launcher_cores"] for r in results[v] if r["launcher_cores"] is not None]
        pairs = paired_ratios(results, v) if base else []
        rows.append("| {} | {:.0f} | {} | {} | {} | {}, {} | {} | {} | {:.1f} | {} |".format(
            LABELS[v], med[v], spread(sps[v]), "{:.3f}".format(med[v] / base) if base else "",
            "{:.3f} ({:.3f}-{:.3f})".format(median(pairs), min(pairs), max(pairs)) if pairs else "",
            len(quiet[v]), "{:.0f}".format(qmed[v]) if quiet[v] else "-",
            "{:.3f}".format(qmed[v] / qbase) if quiet[v] and quiet.get("horovodrun") else "-",
            "{:.3f}".format(median(launcher)) if launcher else "", median([r["wall_s"] for r in results[v]]),
            len(discarded[v])))
    return "\n".join(rows)


def machine_busy(seconds):
    """(cores the machine's processes and interrupts kept busy, cores stolen by the hypervisor) over
    ``seconds``, from /proc/stat."""
    def read():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
        return sum(values[:7]) - values[3] - values[4], values[7]
    before = read()
    time.sleep(seconds)
    after = read()
    return tuple((b - a) / CLOCK_TICKS / seconds for a, b in zip(before, after))


def wait_quiet(args):
    """Wait (at most ``--quiet-wait`` seconds) until, for 2 s, the machine is busy under
    ``--quiet-threshold`` cores and the hypervisor steals under ``--steal-threshold`` cores
    -> (busy cores, stolen cores last measured, seconds waited)."""
    began = time.monotonic()
    busy, steal = machine_busy(2.0)
    while (busy >= args.quiet_threshold or steal >= args.steal_threshold) and \
            time.monotonic() - began < args.quiet_wait:
        time.sleep(1.0)
        busy, steal = machine_busy(2.0)
    return busy, steal, time.monotonic() - began


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=800, help="training steps per rank (default 800)")
    p.add_argument("--warmup", type=int, default=100, help="steps not timed (default 100)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--threads", type=int, default=1,
                   help="OMP_NUM_THREADS and MXNET_CPU_WORKER_NTHREADS for every variant (default 1)")
    p.add_argument("--log-every", type=int, default=100, help="a loss line per rank every N steps (0: none)")
    p.add_argument("--repeats", type=int, default=5, help="runs of each variant (default 5)")
    p.add_argument("--quiet-threshold", type=float, default=0.2,
                   help="cores of other work on this machine under which a run is quiet (default 0.2)")
    p.add_argument("--steal-threshold", type=float, default=0.08,
                   help="cores stolen by the hypervisor under which a run is quiet (default 0.08)")
    p.add_argument("--quiet-wait", type=float, default=120.0,
                   help="before each run, wait at most this many seconds (default 120) for 2 s with the machine "
                        "busy under --quiet-threshold and steal under --steal-threshold")
    p.add_argument("--retries", type=int, default=3,
                   help="run a disturbed run (not quiet) again, at most this many times; the disturbed runs are "
                        "printed, not counted (default 3)")
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help="comma-separated, of " + ",".join(VARIANTS + EXTRA_VARIANTS))
    p.add_argument("--smoke", action="store_true",
                   help=common.SMOKE_HELP + ": 1 repeat of 30 steps (10 warm-up) of each variant, no waiting for a "
                        "quiet machine, no rerun")
    args = p.parse_args(argv)
    if args.smoke:
        args.steps, args.warmup, args.repeats, args.log_every = 30, 10, 1, 10
        args.retries, args.quiet_wait = 0, 0.0
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not args.variants or set(args.variants) - set(VARIANTS + EXTRA_VARIANTS):
        p.error("--variants: choose among " + ",".join(VARIANTS + EXTRA_VARIANTS))
    if args.steps <= args.warmup:
        p.error("--steps must be larger than --warmup")
    return args


def main(argv=None):
    args = parse_args(argv)
    missing = [m for m in ("mxnet", "horovod", "mx_training_toolkit") if importlib.util.find_spec(m) is None]
    if missing or not common.venv_tool("horovodrun"):
        raise SystemExit("run this with the project's virtual environment (.venv/bin/python), with Horovod "
                         "installed (scripts/install_horovod.sh): missing {}".format(
                             ", ".join(missing) or "horovodrun"))
    stray = tagged_processes()
    if stray:
        print("note: {} process(es) of an earlier benchmark still running: {}".format(len(stray), sorted(stray)),
              file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    root = tempfile.mkdtemp(prefix="hvd-bench-")
    began = time.monotonic()
    try:
        code_dir = common.write_job_code(root, JOB)
        job_args = {"steps": args.steps, "warmup": args.warmup, "batch_size": args.batch_size,
                    "hidden": args.hidden, "log_every": args.log_every}
        results = {v: [] for v in args.variants}
        discarded = {v: [] for v in args.variants}  # disturbed runs that were run again
        n = len(args.variants)
        print("load average before: {}".format(loadavg()), file=sys.stderr, flush=True)
        for i in range(args.repeats):
            order = args.variants[i % n:] + args.variants[:i % n]  # rotate: each variant in each position
            for variant in order:
                for attempt in range(args.retries + 1):
                    idle, stolen, waited = wait_quiet(args) if not args.smoke else (0.0, 0.0, 0.0)
                    load_before = loadavg()
                    r = throughput_run(root, variant, i, code_dir, job_args, args.threads, timeout=600)
                    r.update(loadavg=load_before, busy_before=idle, steal_before=stolen, waited_s=waited)
                    last = is_quiet(r, args) or attempt == args.retries
                    (results if last else discarded)[variant].append(r)
                    print("{:<17} #{}{}: {:6.0f} samples/s (timed {:.1f} s, whole run {:.1f} s), accuracy {:.2f}; "
                          "cores during the timed steps: machine {:.2f} = ranks {:.2f} + launchers {}{} + other {:.2f}, "
                          "steal {:.2f}, {} processes created; before: busy {:.2f}, steal {:.2f} cores (waited {:.0f} s), "
                          "loadavg {}{}".format(
                              variant, i + 1, "" if attempt == 0 else " (again)", r["samples_per_s"], r["train_s"],
                              r["wall_s"], r["accuracy"], r["machine_cores"], r["ranks_cores"],
                              "{:.3f}".format(r["launcher_cores"]) if r["launcher_cores"] is not None else "?",
                              ", ps roles {:.2f}".format(r["ps_cores"]) if r["ps_cores"] is not None else "",
                              r["other_cores"], r["steal_cores"], r["forks"], idle, stolen, waited, load_before,
                              "" if last else "; DISTURBED: discarded, run again"), file=sys.stderr, flush=True)
                    if last:
                        break
        print("load average after: {}".format(loadavg()), file=sys.stderr, flush=True)
        for v in args.variants:
            names = sorted({n for r in results[v] for n in r.get("launchers", [])})
            print("launcher processes of {}: {}".format(v, "; ".join(names)), file=sys.stderr)
        import mxnet
        import horovod
        print()
        if args.smoke:
            print(common.SMOKE_NOTE)
        print("MXNet {}, Horovod {}, {} CPU(s); Gluon MLP {}-{}-{}-10, batch {} per rank, {} steps ({} warm-up), "
              "OMP_NUM_THREADS=MXNET_CPU_WORKER_NTHREADS={}, a loss line every {} steps; benchmark took {:.0f} s".format(
                  mxnet.__version__, horovod.__version__, os.cpu_count(), 256, args.hidden, args.hidden,
                  args.batch_size, args.steps, args.warmup, args.threads, args.log_every or "no",
                  time.monotonic() - began))
        print()
        print(table(results, discarded, args))
        print()
        for v in args.variants:
            print("runs {:<18} {}".format(v + ":", ", ".join("{:.0f} ({:.2f}, {:.2f}{})".format(
                r["samples_per_s"], r["other_cores"], r["steal_cores"], "" if is_quiet(r, args) else " !")
                for r in results[v])))
            if discarded[v]:
                print("     {:<18} {}".format("disturbed:", ", ".join("{:.0f} ({:.2f}, {:.2f})".format(
                    r["samples_per_s"], r["other_cores"], r["steal_cores"]) for r in discarded[v])))
        print("(samples/s of each run in order, with the cores other work took and the hypervisor stole during its "
              "timed steps; ! = not a quiet run)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
        left = tagged_processes()
        common.kill(left)
        if left:
            print("cleanup: killed {} process(es) left by the benchmark".format(len(left)), file=sys.stderr)


if __name__ == "__main__":
    main()
