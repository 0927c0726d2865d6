#!/usr/bin/env python3
"""How much a launch costs: our ``train`` against AWS's reference toolkit and bare ``python``.

    .venv/bin/python benchmarks/launch_overhead.py [--runs N] [--no-reference] [--smoke]

Run it with the project's virtual environment (``.venv/bin/python``): our launcher is the ``train``
beside that interpreter, and bare python is that interpreter. The reference toolkit
(``sagemaker-training`` with ``sagemaker-mxnet-training``) is installed with pip into its own
virtual environment on first use (``--ref-venv``, reused after that; about a minute, not counted).

Three variants run the same trivial user script from the same base-directory layout, interleaved
round by round (the order rotates) so that they share the machine's noise:

* ``python``: ``python bench_script.py`` in the code dir, with no launcher;
* ``reference``: the reference's ``train`` with ``SAGEMAKER_TRAINING_MODULE=sagemaker_mxnet_container.training:main``;
* ``ours``: our ``train``.

What is measured, per run:

* first line: from just before the launcher is started to the moment the script's first line
  (printed as its first statement) can be read from the launcher's stdout pipe (read unbuffered,
  ``PYTHONUNBUFFERED=1``). "Overhead" is a launcher's median minus bare python's.
* total: from start until the launcher has exited (a pidfd becomes readable).
* end -> exit: the script prints ``time.time()`` as its last action; the parent notes ``time.time()``
  when the launcher has exited. This includes the script's own interpreter shutdown, which bare
  python's row shows on its own.
* CPU: user + system time from ``wait4()`` on the launcher, which includes the children it waited
  for (the user script). Minus bare python's, it is the launcher's own CPU time: a number that
  depends much less than the wall times on what else the machine is doing.
* peak RSS: the launcher's own high-water mark, ``VmHWM`` from ``/proc/<pid>/status``, polled every
  few milliseconds until it exits (a high-water mark, so the last reading is the peak up to a few
  ms before exit, when a process only frees memory). ``wait4()``'s ``ru_maxrss`` is printed below
  the table but is not the launcher's own peak, for two reasons checked on Linux 6.x here: (1) it is
  the maximum over the process *and every descendant it has waited for* (a parent that runs and
  waits for a 200 MiB child reports 213 MiB; one that does not wait, 13 MiB); (2) it includes the
  pre-``exec`` copy of whoever forked it (``/bin/true`` started by a 300 MiB Python process reports
  313 MiB), so for a small launcher it mostly shows this benchmark's own size.

Every variant gets this process's environment less ``PYTHON*``, ``SM_*``, ``SAGEMAKER_*``,
``MX_TRAINING_*`` and ``DMLC_*`` (then ``PYTHONUNBUFFERED=1``): a ``PYTHONDONTWRITEBYTECODE=1`` left in
a developer's shell would make each launch recompile any edited module from source, which the
images (installed from wheels, compiled at install) never do. Two unmeasured rounds come first.

Facts about the reference found while writing this (sagemaker-training 5.1.4,
sagemaker-mxnet-training 4.3.0, Python 3.11):

* Script mode needs no mxnet: ``sagemaker_mxnet_container.training`` imports none (only its
  parameter-server path starts ``python -c 'import mxnet'``), so mxnet is not installed here.
* It honours ``SAGEMAKER_BASE_DIR`` (and only without it falls back to ``/opt/ml``, or to
  ``~/sagemaker_local/jobs/...`` when that does not exist): nothing is written outside the base dir.
* It requires ``resourceconfig.json`` and ``inputdataconfig.json`` (it crashes without them), and it
  waits, retrying without end, until every host name resolves: ``algo-1`` does not resolve outside a
  SageMaker cluster (where ``/etc/hosts`` names it), so every variant uses the host name ``localhost``.
* It builds its ``Environment`` four times per launch, and each time runs ``nvidia-smi --list-gpus``
  and ``neuron-ls`` (absent here, so each fails fast; on a GPU host each call costs more).
* It calls pip only when the code dir has a ``requirements.txt`` (this one has none).
"""

import argparse
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import common
from common import Series

SCRIPT_NAME = "bench_script.py"
FIRST_MARK = b"BENCH-FIRST\n"
END_MARK = b"BENCH-END "
SCRIPT = """print("BENCH-FIRST", flush=True)
import time
print("BENCH-END %.6f" % time.time(), flush=True)
"""

HWM_POLL_S = 0.004
RUN_TIMEOUT_S = 120.0

# The targets (see benchmarks/README.md): our overhead, our exit delay, our launcher's peak RSS.
OVERHEAD_LIMIT_MS = 60.0
OVERHEAD_SHARE = 0.25
EXIT_LIMIT_MS = 20.0
RSS_LIMIT_MIB = 35.0


@dataclass(frozen=True)
class Variant:
    name: str
    argv: tuple
    cwd: str
    env: dict


@dataclass(frozen=True)
class Sample:
    first_ms: float
    total_ms: float
    end_to_exit_ms: float
    cpu_ms: float
    hwm_mib: float
    maxrss_mib: float


# --- setting up -------------------------------------------------------------------------------


def variants(root, ours_train, ref_train):
    """The same layout for every variant: code/bench_script.py and the three config files."""
    env = common.clean_environ()
    found = []
    base = common.make_base_dir(root, "python", SCRIPT_NAME, SCRIPT)
    found.append(Variant("python", (sys.executable, SCRIPT_NAME), str(base / "code"), env))
    if ref_train is not None:
        base = common.make_base_dir(root, "reference", SCRIPT_NAME, SCRIPT)
        found.append(Variant("reference", (str(ref_train),), str(root),
                             {**env, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_TRAINING_MODULE": common.REF_MODULE}))
    base = common.make_base_dir(root, "ours", SCRIPT_NAME, SCRIPT)
    found.append(Variant("ours", (str(ours_train),), str(root), {**env, "SAGEMAKER_BASE_DIR": str(base)}))
    return found


# --- one run ----------------------------------------------------------------------------------


def run_once(variant, stderr_path):
    """Start the variant, watch its stdout and its exit (pidfd), poll its VmHWM -> ``Sample``."""
    with open(stderr_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(variant.argv), cwd=variant.cwd, env=variant.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=err, bufsize=0, start_new_session=True)
    out_fd = proc.stdout.fileno()
    pidfd = os.pidfd_open(proc.pid)  # works on a zombie too: we are the only one who reaps it
    poller = select.poll()
    poller.register(out_fd, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    status_path = "/proc/{}/status".format(proc.pid)
    out = bytearray()
    first = exit_mono = exit_wall = None
    hwm = 0
    try:
        while exit_mono is None:
            ready = poller.poll(HWM_POLL_S * 1000)
            now_mono, now_wall = time.perf_counter(), time.time()
            for fd, _ in ready:
                if fd == out_fd:
                    data = os.read(out_fd, 65536)
                    if not data:
                        poller.unregister(out_fd)
                    out += data
                    if first is None and FIRST_MARK in out:
                        first = now_mono
                elif fd == pidfd:
                    exit_mono, exit_wall = now_mono, now_wall
            if exit_mono is None:
                hwm = max(hwm, common.read_hwm_kib(status_path))
                if now_mono - t0 > RUN_TIMEOUT_S:
                    os.killpg(proc.pid, 9)
                    raise RuntimeError("{} ran longer than {:.0f} s".format(variant.name, RUN_TIMEOUT_S))
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        deadline = time.perf_counter() + 2.0  # what is left in the pipe (nothing should hold it now)
        while time.perf_counter() < deadline and poller.poll(100):
            data = os.read(out_fd, 65536)
            if not data:
                break
            out += data
    finally:
        os.close(pidfd)
        proc.stdout.close()
    end = _end_stamp(out)
    if proc.returncode != 0 or first is None or end is None:
        tail = Path(stderr_path).read_bytes()[-3000:].decode("utf-8", "replace")
        raise RuntimeError("{} failed (exit status {}, first line seen: {}, end stamp seen: {})\n"
                           "stdout tail:\n{}\nstderr tail:\n{}".format(
                               variant.name, proc.returncode, first is not None, end is not None,
                               bytes(out[-2000:]).decode("utf-8", "replace"), tail))
    return Sample(first_ms=(first - t0) * 1e3, total_ms=(exit_mono - t0) * 1e3,
                  end_to_exit_ms=(exit_wall - end) * 1e3, cpu_ms=(usage.ru_utime + usage.ru_stime) * 1e3,
                  hwm_mib=hwm / 1024, maxrss_mib=usage.ru_maxrss / 1024)


def _end_stamp(out):
    at = out.rfind(END_MARK)
    if at < 0:
        return None
    try:
        return float(bytes(out[at + len(END_MARK):]).split(b"\n", 1)[0])
    except ValueError:
        return None


# --- the report -------------------------------------------------------------------------------


def report(results, runs, versions, load):
    py, ours, ref = results["python"], results["ours"], results.get("reference")
    names = [("python", "`python script.py` (no launcher)")]
    if ref is not None:
        names.append(("reference", "reference (`sagemaker-training` + `sagemaker-mxnet-training`)"))
    names.append(("ours", "ours (`train`)"))
    base_first, base_cpu = py.median("first_ms"), py.median("cpu_ms")
    lines = ["Medians of {} interleaved runs each. {}; Python {}; {} CPUs; load average {:.1f} before, "
             "{:.1f} after.".format(runs, versions, sys.version.split()[0], os.cpu_count(), load[0], load[1]), ""]
    lines.append("| variant | first line (ms) | overhead vs python (ms) | total (ms) | script end → exit (ms) "
                 "| CPU, user+sys (ms) | launcher peak RSS (MiB) |")
    lines.append("|---|--:|--:|--:|--:|--:|--:|")
    for key, label in names:
        s = results[key]
        overhead = "—" if key == "python" else "{:.1f}".format(s.median("first_ms") - base_first)
        lines.append("| {} | {:.1f} | {} | {:.1f} | {:.1f} | {:.1f} | {:.1f} |".format(
            label, s.median("first_ms"), overhead, s.median("total_ms"), s.median("end_to_exit_ms"),
            s.median("cpu_ms"), s.median("hwm_mib")))
    lines.append("")
    lines.append("Python's row is the script alone (its CPU and RSS are the script's); a launcher's CPU includes "
                 "the script it waited for. 10th–90th percentiles, first line / end → exit (ms): " + "; ".join(
                     "{} {:.0f}–{:.0f} / {:.0f}–{:.0f}".format(
                         key, results[key].quantile("first_ms", 0.1), results[key].quantile("first_ms", 0.9),
                         results[key].quantile("end_to_exit_ms", 0.1), results[key].quantile("end_to_exit_ms", 0.9))
                     for key, _ in names) +
                 ". wait4 ru_maxrss, not the launcher's own (see the script's docstring): " + ", ".join(
                     "{} {:.1f}".format(key, results[key].median("maxrss_mib")) for key, _ in names) + " MiB.")
    lines.append("")

    our_over = ours.median("first_ms") - base_first
    our_exit = ours.median("end_to_exit_ms")
    our_rss = ours.median("hwm_mib")
    our_cpu = ours.median("cpu_ms") - base_cpu
    rows = [("launch overhead, ours − python", "{:.1f} ms".format(our_over),
             "< {:.0f} ms".format(OVERHEAD_LIMIT_MS), our_over < OVERHEAD_LIMIT_MS)]
    if ref is not None:
        ref_over = ref.median("first_ms") - base_first
        rows.append(("launch overhead, ours / reference", "{:.2f} ({:.1f} / {:.1f} ms)".format(
            our_over / ref_over, our_over, ref_over), "≤ {:.2f}".format(OVERHEAD_SHARE),
            our_over <= OVERHEAD_SHARE * ref_over))
    rows.append(("script end → launcher exit, ours", "{:.1f} ms (python alone: {:.1f} ms)".format(
        our_exit, py.median("end_to_exit_ms")), "< {:.0f} ms".format(EXIT_LIMIT_MS), our_exit < EXIT_LIMIT_MS))
    rows.append(("launcher peak RSS, ours", "{:.1f} MiB".format(our_rss),
                 "< {:.0f} MiB".format(RSS_LIMIT_MIB), our_rss < RSS_LIMIT_MIB))
    if ref is not None:
        ref_cpu = ref.median("cpu_ms") - base_cpu
        rows += [
            ("script end → exit, ours / reference", "{:.2f}".format(our_exit / ref.median("end_to_exit_ms")), "", None),
            ("total wall time, ours / reference", "{:.2f}".format(ours.median("total_ms") / ref.median("total_ms")),
             "", None),
            ("launcher's own CPU (− python's), ours / reference", "{:.2f} ({:.1f} / {:.1f} ms)".format(
                our_cpu / ref_cpu, our_cpu, ref_cpu), "", None),
            ("launcher peak RSS, ours / reference", "{:.2f}".format(our_rss / ref.median("hwm_mib")), "", None),
        ]
    lines.append("| comparison | measured | target | met |")
    lines.append("|---|--:|--:|:-:|")
    for label, measured, target, met in rows:
        lines.append("| {} | {} | {} | {} |".format(label, measured, target or "—",
                                                    "—" if met is None else ("yes" if met else "**no**")))
    if load[0] > os.cpu_count() or load[1] > os.cpu_count():
        lines += ["", "Note: the load average was above the number of CPUs, so the wall times above are inflated "
                      "(the CPU column much less so)."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs per variant (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured rounds first (default 2)")
    parser.add_argument("--ref-venv", type=Path, default=common.DEFAULT_REF_VENV,
                        help="the reference toolkit's virtual environment (created if missing)")
    parser.add_argument("--no-reference", action="store_true", help="compare with bare python only")
    parser.add_argument("--train", type=Path, default=Path(sys.executable).parent / "train",
                        help="our launcher (default: the train beside this interpreter)")
    parser.add_argument("--smoke", action="store_true",
                        help=common.SMOKE_HELP + ": 2 runs, no warm-up, no reference")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.warmup, args.no_reference = 2, 0, True
    if not args.train.exists():
        parser.error("{} does not exist: run this with the project's venv python, or pass --train".format(args.train))
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    ref_train = versions = None
    if not args.no_reference:
        ref_train = common.ensure_reference(args.ref_venv)
        versions = common.reference_versions(args.ref_venv)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="launch-overhead-") as root:
        chosen = variants(Path(root), args.train, ref_train)
        results = {v.name: Series() for v in chosen}
        began = time.monotonic()
        for round_no in range(args.warmup + args.runs):
            shift = round_no % len(chosen)
            for variant in chosen[shift:] + chosen[:shift]:
                sample = run_once(variant, Path(root) / "stderr-{}.log".format(variant.name))
                if round_no >= args.warmup:
                    results[variant.name].samples.append(sample)
            print("\rround {}/{}".format(round_no + 1, args.warmup + args.runs), end="", file=sys.stderr, flush=True)
        print("\r{} rounds in {:.0f} s".format(args.warmup + args.runs, time.monotonic() - began), file=sys.stderr)
    if args.smoke:
        print(common.SMOKE_NOTE)
    print(report(results, args.runs, versions or "no reference", (load_before, os.getloadavg()[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
