#!/usr/bin/env python3
"""The launcher on a real GPU machine, without Docker and without MXNet: a check to run whenever one
is at hand (docker/README.md, "GPU: what was and was not verified").

    python3 scripts/gpu_check.py prepare [--bundle build/gpu-check]    # here, with the package index
    python3 scripts/gpu_check.py run [--bundle build/gpu-check] [--out DIR] [--expect-gpus N]

The GPU machines this project can use now and then have Python 3.12, PyTorch and CuPy, an NVIDIA
driver, no Docker and no network, and at most 64 MiB carried in. MXNet 1.9.1 cannot run there
(numpy older than 1.24 has no Python 3.12 build), so the check runs `train` from this repository's
src/ on PyTorch scripts. `prepare` makes the small bundle `run` needs besides the repository (about
3 MB): psutil (the toolkit's one dependency; an abi3 wheel, any Python 3) and Horovod's pure-Python
runner from its sdist (the launcher serves Horovod's Gloo rendezvous with it; no Horovod library is
compiled or used). Carry the bundle directory with the working tree.

`run` makes two jobs in a temporary directory and runs the real `train` on each:
  1. script mode: a PyTorch script on GPU 0. SM_NUM_GPUS must equal the GPUs the driver reports
     (nvidia-smi -L; /proc/driver/nvidia/gpus; /dev/nvidia<N>), the script's tensors must be on the
     GPU, and nvidia-smi must work from inside the job.
  2. sagemaker_mpi_enabled without processes_per_host (what the SDK writes for {'mpi': {'enabled':
     True}}): one rank per GPU, each with its slot (HOROVOD_RANK, ...), the reference's NCCL
     variables (NCCL_MIN_NRINGS=4, NCCL_SOCKET_IFNAME, NCCL_DEBUG=INFO) and CUDA_VISIBLE_DEVICES as
     the launcher found it (it sets none: each rank picks its GPU by local rank, as with the
     reference's mpirun); each rank puts a tensor on GPU <local rank> and the ranks all-reduce it
     with torch.distributed over NCCL.
It writes gpu-check-report.txt (one line per check, PASS or FAIL, then the facts) and
gpu-check-report.json to --out (default $OUT, else build/gpu-check-report), and exits 0 when every
check passed, 1 otherwise. It takes about a minute of GPU time; every job has a 150 s limit.

--expect-gpus N: the GPUs the machine must have (default: what the driver reports, and at least
one). With --expect-gpus 0 the same checks run on a machine without a GPU (tensors on the CPU,
Gloo instead of NCCL): that is how this script is tested where there is no GPU.
"""

import argparse
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BUNDLE = os.path.join(REPO_ROOT, "build", "gpu-check")
HOROVOD_VERSION = "0.28.1"  # the images' Horovod (docker/requirements-*.txt)
JOB_TIMEOUT = 150

# --- the user scripts the jobs run ----------------------------------------------------------------

PROBE_SCRIPT = r'''"""Script mode: what the launcher exported, and a tensor computed on the first GPU."""
import json, os, subprocess, time
import torch

began = time.monotonic()
device = torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
a = torch.arange(16, dtype=torch.float32, device=device).reshape(4, 4)
b = (a @ a.t()).sum()
smi = None
if os.environ.get("GPU_CHECK_NVIDIA_SMI"):
    proc = subprocess.run(["nvidia-smi", "--query-gpu=index,name,driver_version,memory.total",
                           "--format=csv,noheader"], capture_output=True, text=True)
    smi = {"returncode": proc.returncode, "stdout": proc.stdout.strip(), "stderr": proc.stderr.strip()[-500:]}
report = {
    "SM_NUM_GPUS": os.environ.get("SM_NUM_GPUS"),
    "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "torch": torch.__version__, "torch_cuda": torch.version.cuda,
    "cuda_available": torch.cuda.is_available(), "device_count": torch.cuda.device_count(),
    "device_names": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    "tensor_device": str(a.device), "result_device": str(b.device), "result": float(b.item()),
    "nvidia_smi": smi, "seconds": round(time.monotonic() - began, 2),
}
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "probe.json"), "w") as f:
    json.dump(report, f, indent=1)
print("gpu_probe: tensors on %s, result %s" % (a.device, report["result"]), flush=True)
'''

RANK_SCRIPT = r'''"""One Horovod rank as the launcher starts it: its variables, a tensor on GPU <local rank>, and an
all-reduce with the other ranks (torch.distributed: NCCL on GPUs, Gloo without)."""
import argparse, json, os, time
import torch
import torch.distributed as dist

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()
began = time.monotonic()
rank, size = int(os.environ["HOROVOD_RANK"]), int(os.environ["HOROVOD_SIZE"])
local_rank = int(os.environ["HOROVOD_LOCAL_RANK"])
gpu = torch.cuda.is_available()
device = torch.device("cuda:%d" % local_rank if gpu else "cpu")
if gpu:
    torch.cuda.set_device(device)
dist.init_process_group("nccl" if gpu else "gloo", init_method="tcp://127.0.0.1:%d" % args.port,
                        rank=rank, world_size=size)
x = torch.full((4,), float(rank + 1), device=device)
dist.all_reduce(x)
if gpu:
    torch.cuda.synchronize()
dist.destroy_process_group()
names = ("HOROVOD_RANK", "HOROVOD_SIZE", "HOROVOD_LOCAL_RANK", "HOROVOD_LOCAL_SIZE", "HOROVOD_HOSTNAME",
         "HOROVOD_CONTROLLER", "HOROVOD_CPU_OPERATIONS", "NCCL_MIN_NRINGS", "NCCL_SOCKET_IFNAME", "NCCL_DEBUG",
         "CUDA_VISIBLE_DEVICES", "SM_NUM_GPUS")
report = {"env": {name: os.environ.get(name) for name in names}, "device": str(x.device),
          "backend": "nccl" if gpu else "gloo", "sum": x.tolist(), "seconds": round(time.monotonic() - began, 2)}
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "rank-%d.json" % rank), "w") as f:
    json.dump(report, f, indent=1)
print("gpu_rank: rank %d of %d on %s summed %s" % (rank, size, x.device, x.tolist()), flush=True)
'''


# --- prepare (on a machine with the package index) -------------------------------------------------

def prepare(bundle):
    """Make the bundle: site/ with psutil and Horovod's Python sources (no compiled Horovod)."""
    site = os.path.join(bundle, "site")
    shutil.rmtree(bundle, ignore_errors=True)
    os.makedirs(site)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        pip = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--no-deps", "-d", work]
        subprocess.run(pip + ["--only-binary=:all:", "--platform", "manylinux2014_x86_64", "--python-version", "3.12",
                              "--implementation", "cp", "--abi", "abi3", "psutil"], check=True)
        subprocess.run(pip + ["--no-binary", ":all:", "horovod==" + HOROVOD_VERSION], check=True)
        [psutil_wheel] = glob.glob(os.path.join(work, "psutil-*.whl"))
        with zipfile.ZipFile(psutil_wheel) as wheel:
            wheel.extractall(site)
        [sdist] = glob.glob(os.path.join(work, "horovod-*.tar.gz"))
        prefix = "horovod-%s/horovod/" % HOROVOD_VERSION
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith(prefix)
                       and m.name.endswith(".py")]
            for member in members:
                member.name = member.name[len("horovod-%s/" % HOROVOD_VERSION):]
            tar.extractall(site, members=members)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(bundle) for f in files)
    print("gpu_check: bundle %s ready (%.1f MB): psutil %s, Horovod %s's Python sources"
          % (bundle, size / 1e6, os.path.basename(psutil_wheel).split("-")[1], HOROVOD_VERSION))


# --- run (on the GPU machine) ---------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def driver_gpus():
    """What the machine reports, three ways: nvidia-smi -L, /proc/driver/nvidia/gpus, /dev/nvidia<N>."""
    facts = {"nvidia_smi": shutil.which("nvidia-smi")}
    if facts["nvidia_smi"]:
        proc = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=60)
        facts["nvidia_smi_L"] = proc.stdout.strip().splitlines() if proc.returncode == 0 else None
        if proc.returncode != 0:
            facts["nvidia_smi_error"] = (proc.stdout + proc.stderr).strip()[-500:]
    try:
        facts["proc_gpus"] = len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        facts["proc_gpus"] = None
    facts["dev_gpus"] = len([n for n in os.listdir("/dev") if n.startswith("nvidia") and n[6:].isdigit()])
    return facts


def write_job(base, hyperparameters, script_name, script):
    for sub in ("input/config", "input/data", "code", "model", "output"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    with open(os.path.join(base, "code", script_name), "w") as f:
        f.write(script)
    hyperparameters = dict(hyperparameters, sagemaker_program=script_name,
                           sagemaker_submit_directory=os.path.join(base, "code"))
    files = {"hyperparameters.json": {k: json.dumps(v) for k, v in hyperparameters.items()},
             # One host; "lo" is its interface: NCCL's sockets and Horovod's rendezvous bind there.
             "resourceconfig.json": {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "lo"},
             "inputdataconfig.json": {}}
    for name, content in files.items():
        with open(os.path.join(base, "input", "config", name), "w") as f:
            json.dump(content, f)


def run_train(base, bundle, extra_env=None):
    """The real `train` (the console script's entry point) on job `base`; return (status, output, seconds)."""
    env = dict(os.environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)  # SM_NUM_GPUS from the driver alone; the ranks must get none
    env.update(extra_env or {})
    env["SAGEMAKER_BASE_DIR"] = base
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(REPO_ROOT, "src"), os.path.join(bundle, "site")])
    argv = [sys.executable, "-c", "import sys; from mx_training_toolkit.command import train; sys.exit(train())"]
    began = time.monotonic()
    try:
        proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=JOB_TIMEOUT, stdin=subprocess.DEVNULL)
        status, output = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as exc:
        status, output = "timeout", (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) \
            else (exc.stdout or "")
    return status, output, round(time.monotonic() - began, 1)


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class Checks:
    def __init__(self):
        self.lines = []

    def check(self, name, ok, detail):
        self.lines.append(("PASS" if ok else "FAIL", name, detail))
        print("gpu_check: %s %s: %s" % ("PASS" if ok else "FAIL", name, detail), flush=True)
        return ok

    @property
    def passed(self):
        return all(line[0] == "PASS" for line in self.lines)


def run(bundle, out, expect_gpus):
    began = time.monotonic()
    checks = Checks()
    facts = {"python": sys.version.split()[0], "machine": socket.gethostname(), "driver": driver_gpus()}
    driver = facts["driver"]
    reported = len(driver["nvidia_smi_L"]) if driver.get("nvidia_smi_L") is not None else driver["proc_gpus"]
    if reported is None:
        reported = driver["dev_gpus"]
    expected = reported if expect_gpus is None else expect_gpus
    if expect_gpus is None:
        checks.check("driver", reported > 0, "%s GPU(s): nvidia-smi -L %s, /proc/driver/nvidia/gpus %s, /dev/nvidia<N> %s"
                     % (reported, driver.get("nvidia_smi_L"), driver["proc_gpus"], driver["dev_gpus"]))
    else:
        checks.check("driver", reported == expected, "%s GPU(s) reported, %d expected" % (reported, expected))
    if not os.path.isdir(os.path.join(bundle, "site", "horovod")):
        checks.check("bundle", False, "%s has no site/horovod: run `python3 scripts/gpu_check.py prepare` first" % bundle)
        return finish(out, checks, facts, began)

    work = tempfile.mkdtemp(prefix="gpu-check-jobs-")
    try:
        # 1. Script mode on GPU 0.
        probe_base = os.path.join(work, "probe")
        write_job(probe_base, {}, "gpu_probe.py", PROBE_SCRIPT)
        status, output, seconds = run_train(probe_base, bundle, {"GPU_CHECK_NVIDIA_SMI": "1" if expected else ""})
        probe = read_json(os.path.join(probe_base, "output", "data", "probe.json"))
        facts["probe"] = {"status": status, "seconds": seconds, "report": probe, "output_tail": output[-3000:]}
        if checks.check("script mode job", status == 0 and probe is not None,
                        "train exited %s after %.1f s" % (status, seconds)):
            checks.check("SM_NUM_GPUS", probe["SM_NUM_GPUS"] == str(expected),
                         "SM_NUM_GPUS=%s, the driver reports %s" % (probe["SM_NUM_GPUS"], expected))
            checks.check("PyTorch sees the GPUs", probe["device_count"] == expected,
                         "torch %s (CUDA %s): %d device(s) %s" % (probe["torch"], probe["torch_cuda"],
                                                                  probe["device_count"], probe["device_names"]))
            want = "cuda:0" if expected else "cpu"
            checks.check("tensors on the GPU" if expected else "tensors on the CPU",
                         probe["tensor_device"] == want and probe["result_device"] == want and probe["result"] == 3680.0,
                         "tensor on %s, (a @ a.T).sum() = %s on %s" % (probe["tensor_device"], probe["result"],
                                                                        probe["result_device"]))
            if expected:
                smi = probe["nvidia_smi"] or {}
                checks.check("nvidia-smi in the job", smi.get("returncode") == 0 and
                             len(smi.get("stdout", "").splitlines()) == expected, repr(smi))
        # 2. Horovod (sagemaker_mpi_enabled), ranks per host left to the launcher: one per GPU.
        ranks_base = os.path.join(work, "ranks")
        port = free_port()
        write_job(ranks_base, {"sagemaker_mpi_enabled": True, "port": port}, "gpu_rank.py", RANK_SCRIPT)
        status, output, seconds = run_train(ranks_base, bundle)
        want_ranks = max(expected, 1)  # one per GPU, else 1
        reports = [read_json(p) for p in sorted(glob.glob(os.path.join(ranks_base, "output", "data", "rank-*.json")))]
        facts["ranks"] = {"status": status, "seconds": seconds, "reports": reports, "output_tail": output[-3000:]}
        if checks.check("Horovod job", status == 0 and len(reports) == want_ranks and None not in reports,
                        "train exited %s after %.1f s; %d rank report(s), %d expected (one per GPU, else 1)"
                        % (status, seconds, len(reports), want_ranks)):
            slots = sorted((int(r["env"]["HOROVOD_RANK"]), int(r["env"]["HOROVOD_SIZE"]),
                            int(r["env"]["HOROVOD_LOCAL_RANK"]), int(r["env"]["HOROVOD_LOCAL_SIZE"])) for r in reports)
            checks.check("one rank per GPU", slots == [(i, want_ranks, i, want_ranks) for i in range(want_ranks)],
                         "(rank, size, local rank, local size): %s" % slots)
            nccl = sorted({(r["env"]["NCCL_MIN_NRINGS"], r["env"]["NCCL_SOCKET_IFNAME"], r["env"]["NCCL_DEBUG"])
                           for r in reports})
            checks.check("NCCL variables", nccl == [("4", "lo", "INFO")],
                         "(NCCL_MIN_NRINGS, NCCL_SOCKET_IFNAME, NCCL_DEBUG): %s" % nccl)
            visible = sorted({str(r["env"]["CUDA_VISIBLE_DEVICES"]) for r in reports})
            checks.check("CUDA_VISIBLE_DEVICES", visible == ["None"],
                         "the ranks' CUDA_VISIBLE_DEVICES: %s (the launcher sets none; each rank uses GPU <local rank>)"
                         % visible)
            devices = sorted(r["device"] for r in reports)
            want_devices = sorted("cuda:%d" % i for i in range(want_ranks)) if expected else ["cpu"] * want_ranks
            total = float(sum(range(1, want_ranks + 1)))
            checks.check("all-reduce", devices == want_devices and all(r["sum"] == [total] * 4 for r in reports),
                         "%s over %s: sums %s (expected %s)" % (reports[0]["backend"], devices,
                                                                sorted({tuple(r["sum"]) for r in reports}), total))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return finish(out, checks, facts, began)


def finish(out, checks, facts, began):
    facts["seconds"] = round(time.monotonic() - began, 1)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "gpu-check-report.json"), "w") as f:
        json.dump({"checks": checks.lines, "facts": facts}, f, indent=1)
    driver = facts["driver"]
    probe = (facts.get("probe") or {}).get("report") or {}
    lines = ["gpu_check: %s, %.1f s, Python %s" % ("PASSED" if checks.passed else "FAILED", facts["seconds"],
                                                  facts["python"])]
    lines += ["%s %s: %s" % line for line in checks.lines]
    lines += ["driver: %s" % (driver.get("nvidia_smi_L") or driver.get("nvidia_smi_error") or "no nvidia-smi"),
              "torch: %s, CUDA %s" % (probe.get("torch"), probe.get("torch_cuda"))]
    for job in ("probe", "ranks"):
        if facts.get(job) and facts[job]["status"] != 0:
            lines += ["--- %s job output (tail):" % job, facts[job]["output_tail"]]
    with open(os.path.join(out, "gpu-check-report.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines[:1]) + "; report in %s" % out, flush=True)
    return 0 if checks.passed else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("prepare", "run"))
    parser.add_argument("--bundle", default=DEFAULT_BUNDLE, help="the bundle directory (default build/gpu-check)")
    parser.add_argument("--out", default=os.environ.get("OUT") or os.path.join(REPO_ROOT, "build", "gpu-check-report"),
                        help="where run writes its report (default $OUT, else build/gpu-check-report)")
    parser.add_argument("--expect-gpus", type=int, help="GPUs the machine must have (default: the driver's count)")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(os.path.abspath(args.bundle))
        return 0
    return run(os.path.abspath(args.bundle), os.path.abspath(args.out), args.expect_gpus)


if __name__ == "__main__":
    sys.exit(main())
