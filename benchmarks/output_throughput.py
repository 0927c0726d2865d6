#!/usr/bin/env python3
"""How fast a script's output gets through the launcher: ours against the reference and bare ``python``.

    .venv/bin/python benchmarks/output_throughput.py [--runs N] [--case NAME ...] [--no-reference] [--stall N] [--smoke]

Run it with the project's virtual environment: our launchers are the ``train`` and ``mx-train``
beside that interpreter, and bare python is that interpreter. The reference toolkit is the one
``launch_overhead.py`` uses, in its own virtual environment (reused, or installed once with pip);
without it (``--no-reference``, ``--smoke``, or when pip cannot install it) its column is left out.

The same script runs under each variant, in one run interleaved round by round (the order
rotates, so that they share the machine's noise):

* ``python``: ``python bench_output.py``, its stdout and stderr pipes drained by this process;
* ``reference``: the reference's ``train`` (``sagemaker-training`` + ``sagemaker-mxnet-training``);
* ``ours``: our ``train``;
* ``python x2``: two bare scripts at once, sharing one stdout pipe and one stderr pipe;
* ``mx-train``: ``mx-train --hosts 2`` (no parameter server): two ``train`` launchers under one
  ``mx-train``, whose ``algo-N | `` prefix goes on every line. Compared with ``python x2``.

Every variant gets this process's environment less ``PYTHON*``, ``SM_*``, ``SAGEMAKER_*``,
``MX_TRAINING_*`` and ``DMLC_*``, then ``PYTHONUNBUFFERED=1`` as in the images (each ``write`` of
the script is a system call); ``--buffered`` drops it (the script then writes 8 KiB blocks).
``--stall N`` runs ``ours`` and ``mx-train`` with the stall watchdog on (``MX_TRAINING_STALL_TIMEOUT_SECONDS=N``),
which looks at every read of a worker's output (``watchdog.PipeWatch``): run it with and without to
see what that costs.

The cases (``--case`` picks some): 60 MB of 100-byte lines and 6 MB of 10-byte lines, each line one
``write``; one 50 MB line in one ``write``; each on stdout and on stderr; and a ``\\r`` progress bar
(20 redraws, 20 ms apart, no newline until the end) on each stream.

What is measured, per run:

* MB/s: the script notes ``time.time()`` just before its first write (with two scripts, both
  wait for each other first, and the earlier start counts) and ends its output with a marker
  line; the payload in MB (10^6 bytes, both scripts' for two) over the time from that start until
  every marker was read from the launcher's stdout or stderr (the reference sends the script's
  stderr to its own stdout). Medians over the runs; ratios are to bare python's median (to
  ``python x2``'s for ``mx-train``).
* first byte (progress cases): from the script's first redraw (written without a newline) to the
  moment it can be read from the launcher's output.
* peak RSS: the launcher's own high-water mark, ``VmHWM`` from ``/proc/<pid>/status``, polled every
  few milliseconds while it runs; for ``mx-train`` its own, and the larger of its two ``train``
  launchers'. Medians over the runs.
* launcher CPU: user + system seconds of the launcher process itself (all its threads, start-up
  included, the script not), from ``/proc/<pid>/stat`` at the last poll before it exits. Unlike
  the wall times, it hardly depends on what else the machine is doing.

``--bin DIR`` measures launchers other than the ones beside this interpreter (an older checkout's
``train`` and ``mx-train``, say).
"""

import argparse
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import common
from common import Series

SCRIPT_NAME = "bench_output.py"
END_MARK = b"BENCHEND\n"
BAR_MARK = b"BENCHBAR"
SCRIPT = r'''
import os, sys, time

stream = getattr(sys, os.environ["BENCH_STREAM"])
kind, size, total = os.environ["BENCH_KIND"], int(os.environ["BENCH_LINE"]), int(os.environ["BENCH_BYTES"])
stamp, writers = os.environ["BENCH_STAMP"], int(os.environ["BENCH_WRITERS"])


def note(text):
    fd = os.open(stamp, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (text + "\n").encode())
    os.close(fd)


note("ready")
while open(stamp).read().count("ready") < writers:  # two scripts start writing together
    time.sleep(0.001)
write = stream.write
if kind == "lines":
    line = "y" * (size - 1) + "\n"
    note("start %.6f" % time.time())
    for _ in range(total // size):
        write(line)
elif kind == "line":
    big = "x" * total
    note("start %.6f" % time.time())
    write(big)
    write("\n")
else:  # a progress bar redrawn with \r, no newline until the end
    note("start %.6f" % time.time())
    for i in range(20):
        write("\rBENCHBAR %3d%%|%s|" % (i * 5, "#" * i))
        stream.flush()
        time.sleep(0.02)
    write("\n")
write("BENCHEND\n")
stream.flush()
'''

POLL_S = 0.004
RUN_TIMEOUT_S = 300.0
RATIO_TARGET = 0.9
RSS_LIMIT_MIB = 35.0
FIRST_BYTE_LIMIT_MS = 100.0
MB = 1e6
SMOKE_SCALE = 100  # --smoke divides every case's payload by this


@dataclass(frozen=True)
class Case:
    name: str
    stream: str
    kind: str
    line: int
    total: int


CASES = (
    Case("stdout, 100-byte lines", "stdout", "lines", 100, 60_000_000),
    Case("stderr, 100-byte lines", "stderr", "lines", 100, 60_000_000),
    Case("stdout, 10-byte lines", "stdout", "lines", 10, 6_000_000),
    Case("stderr, 10-byte lines", "stderr", "lines", 10, 6_000_000),
    Case("stdout, one 50 MB line", "stdout", "line", 0, 50_000_000),
    Case("stderr, one 50 MB line", "stderr", "line", 0, 50_000_000),
    Case("stdout, \\r progress", "stdout", "progress", 0, 0),
    Case("stderr, \\r progress", "stderr", "progress", 0, 0),
)


@dataclass(frozen=True)
class Variant:
    name: str
    commands: tuple  # one argv per process this variant starts (two for "python x2")
    cwd: str
    env: dict
    launcher: bool  # whether commands[0] is a launcher whose peak RSS is measured
    writers: int  # how many scripts write


@dataclass(frozen=True)
class Sample:
    mb_s: float
    first_byte_ms: float
    rss_mib: float
    host_rss_mib: float
    cpu_s: float
    host_cpu_s: float
    received: int


# --- setting up -------------------------------------------------------------------------------


def variants(root, bindir, ref_train, wanted, stall=None):
    env = common.clean_environ()
    ours_env = dict(env, MX_TRAINING_STALL_TIMEOUT_SECONDS=str(stall)) if stall else env  # the watchdog reads every read
    found = []
    code = common.make_base_dir(root, "python", SCRIPT_NAME, SCRIPT) / "code"
    script = (sys.executable, SCRIPT_NAME)
    found.append(Variant("python", (script,), str(code), env, False, 1))
    if ref_train is not None:
        base = common.make_base_dir(root, "reference", SCRIPT_NAME, SCRIPT)
        found.append(Variant("reference", ((str(ref_train),),), str(root), {
            **env, "SAGEMAKER_BASE_DIR": str(base), "SAGEMAKER_TRAINING_MODULE": common.REF_MODULE}, True, 1))
    base = common.make_base_dir(root, "ours", SCRIPT_NAME, SCRIPT)
    found.append(Variant("ours", ((str(bindir / "train"),),), str(root), {**ours_env, "SAGEMAKER_BASE_DIR": str(base)},
                         True, 1))
    found.append(Variant("python x2", (script, script), str(code), env, False, 2))
    mx_train = (str(bindir / "mx-train"), "--hosts", "2", "--code", str(code), "--entry-point", SCRIPT_NAME,
                "--base-dir", str(Path(root) / "mx-train"))
    found.append(Variant("mx-train", (mx_train,), str(root), ours_env, True, 2))
    return [v for v in found if wanted is None or v.name in wanted]


# --- one run ----------------------------------------------------------------------------------


def _children(pid):
    found = []
    try:
        for tid in os.listdir("/proc/{}/task".format(pid)):
            with open("/proc/{}/task/{}/children".format(pid, tid)) as f:
                found.extend(int(p) for p in f.read().split())
    except OSError:
        pass
    return found


class _Marks:
    """Counts ``mark`` in a stream read in pieces, wherever the pieces cut it."""

    def __init__(self, mark):
        self.mark, self.count, self._carry = mark, 0, b""

    def feed(self, data):
        joined = self._carry + data  # the carry is shorter than the mark: no mark is counted twice
        self.count += joined.count(self.mark)
        self._carry = joined[-(len(self.mark) - 1):]


def run_once(variant, case, root, buffered):
    """Run the variant on the case, drain its output and poll its memory -> ``Sample``."""
    stamp = Path(root) / "stamp"
    if stamp.exists():
        stamp.unlink()
    env = {**variant.env, "BENCH_STREAM": case.stream, "BENCH_KIND": case.kind, "BENCH_LINE": str(case.line),
           "BENCH_BYTES": str(case.total), "BENCH_STAMP": str(stamp), "BENCH_WRITERS": str(variant.writers)}
    if buffered:
        env.pop("PYTHONUNBUFFERED", None)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        procs = [subprocess.Popen(list(argv), cwd=variant.cwd, env=env, stdin=subprocess.DEVNULL, stdout=out_w,
                                  stderr=err_w, start_new_session=True) for argv in variant.commands]
    finally:
        os.close(out_w)
        os.close(err_w)
    poller = select.poll()
    for fd in (out_r, err_r):
        poller.register(fd, select.POLLIN)
    open_fds = {out_r, err_r}
    ends, bars = _Marks(END_MARK), _Marks(BAR_MARK)
    end_at = first_bar = None
    received = 0
    hwm, host_hwm, cpu, host_cpu = 0, {}, 0.0, {}
    launcher = procs[0].pid if variant.launcher else None
    began = next_poll = time.monotonic()
    try:
        while open_fds or any(p.poll() is None for p in procs):
            for fd, _ in poller.poll(POLL_S * 1000):
                data = os.read(fd, 1 << 20)
                now = time.time()
                if not data:
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    continue
                received += len(data)
                ends.feed(data)
                if end_at is None and ends.count >= variant.writers:
                    end_at = now
                if first_bar is None and case.kind == "progress":
                    bars.feed(data)
                    if bars.count:
                        first_bar = now
            if launcher is not None and time.monotonic() >= next_poll and procs[0].poll() is None:
                next_poll = time.monotonic() + POLL_S
                hwm = max(hwm, common.read_hwm_kib("/proc/{}/status".format(launcher)))
                cpu = max(cpu, (common.cpu_seconds(launcher) or 0.0))
                if variant.name == "mx-train":
                    for pid in _children(launcher):
                        host_hwm[pid] = max(host_hwm.get(pid, 0), common.read_hwm_kib(
                            "/proc/{}/status".format(pid)))
                        host_cpu[pid] = max(host_cpu.get(pid, 0.0), (common.cpu_seconds(pid) or 0.0))
            if time.monotonic() - began > RUN_TIMEOUT_S:
                raise RuntimeError("{} ran longer than {:.0f} s on {}".format(variant.name, RUN_TIMEOUT_S, case.name))
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, 9)
            p.wait()
        os.close(out_r)
        os.close(err_r)
    starts = [float(line.split()[1]) for line in stamp.read_text().splitlines() if line.startswith("start ")]
    failed = [p.returncode for p in procs if p.returncode != 0]
    if failed or end_at is None or len(starts) != variant.writers:
        raise RuntimeError("{} on {}: exit statuses {}, end marks {}, starts {}".format(
            variant.name, case.name, [p.returncode for p in procs], ends.count, len(starts)))
    payload = variant.writers * case.total
    if received < payload:
        raise RuntimeError("{} on {}: {} bytes of output, {} written".format(
            variant.name, case.name, received, payload))
    start = min(starts)
    return Sample(mb_s=payload / MB / (end_at - start) if case.total else None,
                  first_byte_ms=(first_bar - start) * 1e3 if first_bar is not None else None,
                  rss_mib=hwm / 1024 if launcher else None,
                  host_rss_mib=max(host_hwm.values()) / 1024 if host_hwm else None,
                  cpu_s=cpu if launcher else None, host_cpu_s=max(host_cpu.values()) if host_cpu else None,
                  received=received)


# --- the report -------------------------------------------------------------------------------


def _fmt(value, spec="{:.1f}"):
    return "—" if value is None else spec.format(value)


def _ratio(value, base):
    return None if value is None or not base else value / base


def report(results, cases, names, runs, versions, load, buffered):
    has = set(names)
    lines = ["Medians of {} interleaved runs each; {}; Python {}; {} CPUs; load average {:.1f} before, {:.1f} after; "
             "the script's output {}.".format(
                 runs, versions, sys.version.split()[0], os.cpu_count(), load[0], load[1],
                 "block-buffered (8 KiB writes)" if buffered
                 else "unbuffered (PYTHONUNBUFFERED=1: one write per line)"),
             ""]
    cols = [n for n in ("python", "reference", "ours", "python x2", "mx-train") if n in has]
    head = {"python": "`python` MB/s", "reference": "reference MB/s (ratio)", "ours": "ours MB/s (ratio)",
            "python x2": "2 × `python` MB/s", "mx-train": "`mx-train`, 2 hosts, MB/s (ratio)"}
    lines.append("| case | " + " | ".join(head[c] for c in cols) + " |")
    lines.append("|---|" + "--:|" * len(cols))
    checks = []
    for case in cases:
        row = []
        attr = "first_byte_ms" if case.kind == "progress" else "mb_s"
        for c in cols:
            value = results[c][case.name].median(attr)
            base_name = "python x2" if c == "mx-train" else "python"
            base = results[base_name][case.name].median(attr) if base_name in has else None
            if case.kind == "progress" or c in ("python", "python x2") or base is None:
                row.append(_fmt(value))
            else:
                row.append("{} ({})".format(_fmt(value), _fmt(_ratio(value, base), "{:.2f}")))
            if c == "ours" and case.kind != "progress" and base:
                checks.append(("ours / python, " + case.name, _ratio(value, base), RATIO_TARGET))
            if c == "mx-train" and case.kind != "progress" and base:
                checks.append(("mx-train / 2 × python, " + case.name, _ratio(value, base), RATIO_TARGET))
        label = case.name + (": first byte, ms" if case.kind == "progress" else "")
        lines.append("| {} | {} |".format(label, " | ".join(row)))
    lines += ["", "Launcher peak RSS (MiB, median of the runs' VmHWM) and CPU time (s, user + system, start "
                  "to exit, its start-up included; the script's own is not):", ""]
    rss_cols = [c for c in ("reference", "ours", "mx-train") if c in has]
    rss_head = {"reference": "reference RSS / CPU", "ours": "ours (`train`) RSS / CPU",
                "mx-train": "`mx-train` RSS / CPU, and its hosts' `train` RSS / CPU (the larger)"}
    lines.append("| case | " + " | ".join(rss_head[c] for c in rss_cols) + " |")
    lines.append("|---|" + "--:|" * len(rss_cols))
    worst = {}
    for case in cases:
        row = []
        for c in rss_cols:
            s = results[c][case.name]
            cell = "{} / {}".format(_fmt(s.median("rss_mib")), _fmt(s.median("cpu_s"), "{:.2f}"))
            values = [s.median("rss_mib")]
            if c == "mx-train":
                cell += "; {} / {}".format(_fmt(s.median("host_rss_mib")), _fmt(s.median("host_cpu_s"), "{:.2f}"))
                values.append(s.median("host_rss_mib"))
            row.append(cell)
            if c != "reference":
                worst[c] = max([worst.get(c, 0)] + [v for v in values if v is not None])
        lines.append("| {} | {} |".format(case.name, " | ".join(row)))
    lines += ["", "| target | measured | met |", "|---|--:|:-:|"]
    for label, value, target in checks:
        lines.append("| {} ≥ {:.1f} | {} | {} |".format(label, target, _fmt(value, "{:.2f}"),
                                                       "yes" if value is not None and value >= target else "**no**"))
    for c, value in worst.items():
        lines.append("| launcher peak RSS, {}, every case < {:.0f} MiB | {:.1f} | {} |".format(
            c, RSS_LIMIT_MIB, value, "yes" if value < RSS_LIMIT_MIB else "**no**"))
    for case in cases:
        if case.kind == "progress":
            for c in ("ours", "mx-train"):
                if c in has:
                    value = results[c][case.name].median("first_byte_ms")
                    lines.append("| {}, {}: first byte < {:.0f} ms | {} | {} |".format(
                        c, case.name, FIRST_BYTE_LIMIT_MS, _fmt(value),
                        "yes" if value is not None and value < FIRST_BYTE_LIMIT_MS else "**no**"))
    if max(load) > os.cpu_count():
        lines += ["", "Note: the load average was above the number of CPUs: other work shared the machine."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="measured runs per variant and case (default 3)")
    parser.add_argument("--case", action="append", choices=[c.name for c in CASES], metavar="NAME",
                        help="run only this case (repeatable): " + "; ".join(c.name for c in CASES))
    parser.add_argument("--variant", action="append", choices=["python", "reference", "ours", "python x2", "mx-train"],
                        help="run only this variant (repeatable)")
    parser.add_argument("--buffered", action="store_true", help="leave the script's output block-buffered")
    parser.add_argument("--ref-venv", type=Path, default=common.DEFAULT_REF_VENV,
                        help="the reference toolkit's virtual environment (created if missing)")
    parser.add_argument("--no-reference", action="store_true", help="leave the reference out")
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent,
                        help="where our train and mx-train are (default: beside this interpreter)")
    parser.add_argument("--stall", type=float, metavar="SECONDS",
                        help="run ours and mx-train with the stall watchdog on (MX_TRAINING_STALL_TIMEOUT_SECONDS), "
                             "which looks at every read of the script's output")
    parser.add_argument("--smoke", action="store_true",
                        help=common.SMOKE_HELP + ": 1 run, every case with 1/{} of its payload, no reference".format(
                            SMOKE_SCALE))
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs, args.no_reference = 1, True
    for tool in ("train", "mx-train"):
        if not (args.bin / tool).exists():
            parser.error("{} does not exist: run this with the project's venv python, or pass --bin".format(
                args.bin / tool))
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    cases = [c for c in CASES if not args.case or c.name in args.case]
    if args.smoke:
        cases = [replace(c, total=c.total // SMOKE_SCALE) for c in cases]

    ref_train, versions = None, "reference unavailable"
    if not args.no_reference and (args.variant is None or "reference" in args.variant):
        try:
            ref_train = common.ensure_reference(args.ref_venv)
            versions = common.reference_versions(args.ref_venv)
        except (SystemExit, OSError, subprocess.SubprocessError) as e:
            print("the reference is unavailable ({}): its column is left out".format(e), file=sys.stderr)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="output-throughput-") as root:
        chosen = variants(Path(root), args.bin, ref_train, args.variant, args.stall)
        needed = {v.name for v in chosen}
        results = {v.name: {c.name: Series() for c in cases} for v in chosen}
        began = time.monotonic()
        jobs = [(v, c) for c in cases for v in chosen]
        for round_no in range(args.runs):
            shift = round_no % len(chosen)
            for case in cases:
                for variant in chosen[shift:] + chosen[:shift]:
                    for attempt in range(3):  # a run that failed is retried (twice), then the benchmark stops
                        try:
                            sample = run_once(variant, case, root, args.buffered)
                            break
                        except RuntimeError as e:
                            if attempt == 2:
                                raise
                            print("\n{} (retrying)".format(e), file=sys.stderr)
                    results[variant.name][case.name].samples.append(sample)
            print("\rround {}/{} ({:.0f} s)".format(round_no + 1, args.runs, time.monotonic() - began), end="",
                  file=sys.stderr, flush=True)
        print("\r{} runs in {:.0f} s".format(len(jobs) * args.runs, time.monotonic() - began), file=sys.stderr)
    if args.smoke:
        print(common.SMOKE_NOTE + " Payloads are 1/{} of the sizes the cases name.".format(SMOKE_SCALE))
    if args.stall:
        print("ours and mx-train ran with the stall watchdog on (MX_TRAINING_STALL_TIMEOUT_SECONDS={:g}).".format(
            args.stall))
    print(report(results, cases, [n for n in ("python", "reference", "ours", "python x2", "mx-train") if n in needed],
                 args.runs, versions, (load_before, os.getloadavg()[0]), args.buffered))
    return 0


if __name__ == "__main__":
    sys.exit(main())
