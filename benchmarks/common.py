"""What the benchmarks share: their run bookkeeping, the processes' figures read from ``/proc``, a
tagged run's directory and its cleanup, the tools beside this interpreter, and the reference toolkit's
own virtual environment.

Every benchmark runs with the project's virtual environment (``.venv/bin/python``): our launchers
are the ``train`` and ``mx-train`` beside that interpreter. A benchmark imports this module as
``common`` (``benchmarks/`` is the script's own directory, so it is first on ``sys.path``).
"""

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The reference toolkit, installed with pip into a virtual environment of its own on first use.
REF_PACKAGES = ("sagemaker-training==5.1.4", "sagemaker-mxnet-training==4.3.0")
REF_MODULE = "sagemaker_mxnet_container.training:main"
DEFAULT_REF_VENV = Path.home() / ".cache" / "mx-training-toolkit" / "bench-ref-venv"

SMOKE_HELP = ("run once with the smallest arguments that still exercise every path (what CI runs; "
              "the numbers mean nothing)")
SMOKE_NOTE = "Smoke run (--smoke): it shows that the benchmark still works; its numbers mean nothing."


# --- run bookkeeping ----------------------------------------------------------------------------


def median(values):
    """The median of ``values``, or NaN when there are none."""
    values = list(values)
    return statistics.median(values) if values else float("nan")


@dataclass
class Series:
    """The samples (dataclass instances) of one variant: medians and quantiles of one field."""

    samples: list = field(default_factory=list)

    def values(self, attr):
        return [getattr(s, attr) for s in self.samples if getattr(s, attr) is not None]

    def median(self, attr):
        """The median of the samples' ``attr`` that are not None, or None when none is."""
        values = self.values(attr)
        return statistics.median(values) if values else None

    def quantile(self, attr, q):
        values = sorted(self.values(attr))
        return values[min(len(values) - 1, int(q * len(values)))]


def log_tail(path, lines=25):
    """The last ``lines`` lines of the text file at ``path`` ("" when it cannot be read)."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


# --- processes ----------------------------------------------------------------------------------


def free_port():
    """A port free on every address (mx-train picks its own the same way)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """User + system CPU seconds of ``pid`` so far (all its threads), or None once it is gone."""
    try:
        with open("/proc/{}/stat".format(pid), "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return None


def read_hwm_kib(path):
    """``VmHWM`` (peak resident set, KiB) from a ``/proc/<pid>/status`` file, 0 when unreadable."""
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def read_environ(pid):
    """The environment of process ``pid`` as {bytes: bytes}, or None when it cannot be read."""
    try:
        with open("/proc/{}/environ".format(pid), "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return dict(item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)


def tagged_processes(tag_name, tag=None, marker=None):
    """{pid: environ as str} of the live processes whose environment has ``tag_name`` (equal to
    ``tag`` when given); with ``tag`` None and a ``marker``, those that have ``marker`` instead."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        env = read_environ(name)
        if env is None:
            continue
        if tag is not None:
            if env.get(tag_name.encode()) != tag.encode():
                continue
        elif (marker or tag_name).encode() not in env:
            continue
        found[int(name)] = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in env.items()}
    return found


def kill(pids):
    """SIGKILL each of ``pids`` that still runs (and may be signalled)."""
    for pid in pids:
        try:
            os.kill(pid, 9)
        except (ProcessLookupError, PermissionError):
            pass


# --- one run of a job, its processes tagged ----------------------------------------------------


def write_job_code(root, script):
    """``root/code/job.py`` holding ``script`` -> the ``code`` directory's path."""
    code_dir = os.path.join(root, "code")
    os.makedirs(code_dir)
    with open(os.path.join(code_dir, "job.py"), "w") as f:
        f.write(script)
    return code_dir


def make_run_dir(root, label, index):
    """A new run's tag (``<label>-<index>-<8 hex digits>``: every process of the run carries it in its
    environment) and its directory ``root/<tag>`` with an empty ``results/`` in it
    -> (tag, directory, results directory, path of its output log)."""
    tag = "{}-{}-{}".format(label, index, uuid.uuid4().hex[:8])
    run_dir = os.path.join(root, tag)
    results = os.path.join(run_dir, "results")
    os.makedirs(results)
    return tag, run_dir, results, os.path.join(run_dir, "output.log")


def stop_run(tag_name, tag, procs):
    """SIGKILL every process of one run: the groups of ``procs`` (the Popen objects we started, each in
    a session of its own) and every process whose ``tag_name`` is ``tag``; reap ``procs``. Raises
    RuntimeError when tagged processes are still there after that."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    for _ in range(3):
        kill(tagged_processes(tag_name, tag))
        time.sleep(0.1)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    left = tagged_processes(tag_name, tag)
    if left:
        raise RuntimeError("{}: processes left after cleanup: {}".format(tag, sorted(left)))


# --- tools and environments ---------------------------------------------------------------------


def venv_tool(name):
    """The path of the command ``name`` beside this interpreter, else on PATH, else None."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(path):
        return path
    import shutil

    return shutil.which(name)


def mx_train_argv():
    """How to start ``mx-train``: the one beside this interpreter, else through this interpreter."""
    path = os.path.join(os.path.dirname(sys.executable), "mx-train")
    if os.path.exists(path):
        return [path]
    return [sys.executable, "-c", "from mx_training_toolkit.local import main; main()"]


def clean_environ():
    """This process's environment without anything that would steer a launcher or the script,
    plus ``PYTHONUNBUFFERED=1`` (as in the images)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SM_", "SAGEMAKER_", "MX_TRAINING_", "DMLC_", "PYTHON"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def make_base_dir(root, name, script_name, script):
    """``root/name`` laid out as a one-host job: ``code/<script_name>`` holding ``script``, and the
    three config files -> its path."""
    from mx_training_toolkit.jobfiles import write_job

    base = Path(root) / name
    (base / "code").mkdir(parents=True)
    (base / "code" / script_name).write_text(script)
    write_job(base, {"sagemaker_program": script_name}, {"current_host": "localhost", "hosts": ["localhost"]}, {})
    return base


def ensure_reference(venv):
    """Create the reference's virtual environment unless it is there -> its ``train``."""
    train = Path(venv) / "bin" / "train"
    marker = Path(venv) / ".bench-packages"
    wanted = "\n".join(REF_PACKAGES)
    if train.exists() and marker.exists() and marker.read_text() == wanted:
        return train
    print("installing the reference toolkit into {} (once) ...".format(venv), file=sys.stderr)
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(Path(venv) / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    done = subprocess.run(pip + list(REF_PACKAGES), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("pip could not install {}:\n{}".format(" ".join(REF_PACKAGES), (done.stdout + done.stderr)[-4000:]))
    marker.write_text(wanted)
    return train


def reference_versions(venv):
    """The reference packages' versions installed in ``venv``, in words."""
    code = ("from importlib.metadata import version as v; "
            "print(' '.join(p + '==' + v(p) for p in ('sagemaker-training', 'sagemaker-mxnet-training')))")
    out = subprocess.run([str(Path(venv) / "bin" / "python"), "-c", code], capture_output=True, text=True)
    return out.stdout.strip() or "unknown versions"
