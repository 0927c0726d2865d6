"""Horovod jobs (the platform's mpi option) through ``mx-train``: ranks started by each host's
launcher, no mpirun, no ssh. Needs Horovod (scripts/install_horovod.sh; .ci/run installs it)."""

import glob
import json
import os
import signal
import subprocess
import time

import pytest

from .support import MX_TRAIN, RESOURCES, assert_no_process_left, finish, pid_alive, processes_with, read

HOROVOD_CODE = os.path.join(RESOURCES, "horovod")
HERE_TEST = os.path.dirname(os.path.abspath(__file__))

if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):  # CI installs Horovod: missing, it fails
    pytest.importorskip("horovod.mxnet")


def start(tmp_path, entry, *extra, hosts=2, ranks=2):
    root = str(tmp_path / "hosts")
    argv = MX_TRAIN + ["--code", HOROVOD_CODE, "--entry-point", entry, "--hosts", str(hosts),
                       "--horovod", str(ranks), "--base-dir", root] + list(extra)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), root


def first_line(root, host):
    text = read(root, host, "output", "failure")
    return text.splitlines()[0] if text else None


def test_allreduce_over_2_hosts_by_2_ranks(tmp_path):
    proc, root = start(tmp_path, "allreduce.py")
    out = finish(proc)[0]
    assert proc.returncode == 0, out[-4000:]
    reports = sorted((json.load(open(p)) for p in glob.glob(os.path.join(root, "algo-*", "output", "data",
                                                                           "rank-*.json"))), key=lambda r: r["rank"])
    assert [(r["rank"], r["host"], r["local_rank"], r["size"], r["local_size"]) for r in reports] == [
        (0, "algo-1", 0, 4, 2), (1, "algo-1", 1, 4, 2), (2, "algo-2", 0, 4, 2), (3, "algo-2", 1, 4, 2)]
    assert all(r["sum"] == [10.0, 10.0, 10.0] for r in reports)
    assert "[rank 3] allreduce: rank 3 of 4 got [10.0, 10.0, 10.0]" in out  # each rank's output says which
    assert_no_process_left(root)


def test_a_gluon_job_trains_the_same_parameters_everywhere_and_only_rank_0_saves(tmp_path):
    proc, root = start(tmp_path, "gluon_train.py")
    out = finish(proc)[0]
    assert proc.returncode == 0, out[-4000:]
    params = [open(p).read() for p in sorted(glob.glob(os.path.join(root, "algo-*", "output", "data",
                                                                      "params-rank*.json")))]
    assert len(params) == 4 and len(set(params)) == 1
    assert sorted(os.listdir(os.path.join(root, "algo-1", "model"))) == [
        "model-0000.params", "model-shapes.json", "model-symbol.json"]
    assert os.listdir(os.path.join(root, "algo-2", "model")) == []


def test_a_rank_that_raises_on_host_2_ends_the_job_everywhere(tmp_path):
    proc, root = start(tmp_path, "allreduce.py", "--hp", "fail_rank=2", "--hp", "sleep=1")
    began = time.monotonic()
    out = finish(proc)[0]
    assert proc.returncode == 1, out[-4000:]
    cause = "User script failed: allreduce.py (rank 2) on algo-2 exited with status 1"
    assert first_line(root, "algo-2") == cause
    assert first_line(root, "algo-1") == "Job failed on algo-2: " + cause
    assert "ValueError: rank 2 fails on purpose" in read(root, "algo-1", "output", "failure")
    assert time.monotonic() - began < 60
    assert_no_process_left(root)


def _wait_for(proc, marker, count, lines):
    while count:
        line = proc.stdout.readline()
        assert line, b"".join(lines).decode(errors="replace")[-4000:]
        lines.append(line)
        count -= marker in line


def test_a_sigkilled_rank_ends_the_job_everywhere_within_15_s(tmp_path):
    proc, root = start(tmp_path, "allreduce.py", "--hp", "sleep=60")
    lines = []
    _wait_for(proc, b"started, pid", 4, lines)
    pid = next(int(line.split(b"pid ")[1]) for line in lines if b"rank 3 of 4 started" in line)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    out = b"".join(lines).decode() + finish(proc)[0]
    assert time.monotonic() - killed_at < 15, out[-3000:]
    assert proc.returncode == 137, out[-3000:]
    cause = ("User script failed: allreduce.py (rank 3) on algo-2 was killed by SIGKILL (exit status 137); "
             "probably out of memory")
    assert first_line(root, "algo-2") == cause
    assert first_line(root, "algo-1") == "Job failed on algo-2: " + cause
    assert not pid_alive(pid)
    assert_no_process_left(root)


def test_sigterm_to_the_rendezvous_hosts_launcher_ends_the_job_everywhere_within_15_s(tmp_path):
    proc, root = start(tmp_path, "allreduce.py", "--hp", "sleep=60")
    lines = []
    _wait_for(proc, b"started, pid", 4, lines)
    launcher = processes_with("SAGEMAKER_BASE_DIR", os.path.join(root, "algo-1"))
    launcher = [p for p in launcher if b"mx_training_toolkit.training" in open("/proc/{}/cmdline".format(p),
                                                                               "rb").read()]
    assert len(launcher) == 1
    stopped_at = time.monotonic()
    os.kill(launcher[0], signal.SIGTERM)
    out = b"".join(lines).decode() + finish(proc)[0]
    assert time.monotonic() - stopped_at < 15, out[-3000:]
    assert proc.returncode == 143, out[-3000:]
    assert first_line(root, "algo-1") == ("Job stopped: the launcher received SIGTERM before the job finished; "
                                          "allreduce.py was killed by SIGTERM (exit status 143)")
    assert first_line(root, "algo-2") == "Job failed on algo-1: Job stopped: the launcher received SIGTERM"
    assert_no_process_left(root)


def test_a_rank_that_never_calls_init_fails_the_job_after_the_rendezvous_timeout(tmp_path):
    # Decided: the others wait (bounded: HOROVOD_GLOO_TIMEOUT_SECONDS, set here through the SDK's
    # custom_mpi_options), then Gloo aborts them and the job fails with their stderr saying why.
    proc, root = start(tmp_path, "allreduce.py", "--hp", "no_init_rank=1",
                       "--hp", "sagemaker_mpi_custom_mpi_options=-x HOROVOD_GLOO_TIMEOUT_SECONDS=8", ranks=1)
    began = time.monotonic()
    out = finish(proc)[0]
    assert time.monotonic() - began < 90, out[-3000:]
    assert proc.returncode == 134, out[-3000:]
    cause = "User script failed: allreduce.py (rank 0) on algo-1 was killed by SIGABRT (exit status 134)"
    assert first_line(root, "algo-1") == cause
    assert first_line(root, "algo-2") == "Job failed on algo-1: " + cause
    assert "timeout" in read(root, "algo-1", "output", "failure").lower()
    assert_no_process_left(root)


@pytest.mark.parametrize("hosts,ranks", [(1, 2), (2, 1)])
def test_the_sdks_mpi_hyperparameters(tmp_path, hosts, ranks):
    # Exactly what the SDK writes for distribution={'mpi': {'enabled': True, 'processes_per_host': N}}.
    proc, root = start(tmp_path, "allreduce.py", hosts=hosts, ranks=ranks)
    out = finish(proc)[0]
    assert proc.returncode == 0, out[-4000:]
    config = json.load(open(os.path.join(root, "algo-1", "input", "config", "hyperparameters.json")))
    assert (config["sagemaker_mpi_enabled"], config["sagemaker_mpi_num_of_processes_per_host"]) == \
        ("true", str(ranks))
    assert "allreduce: rank {} of {} got".format(hosts * ranks - 1, hosts * ranks) in out


def test_the_bundled_horovod_example(tmp_path):
    root = str(tmp_path / "hosts")
    example = os.path.join(os.path.dirname(os.path.dirname(HERE_TEST)), "examples", "horovod_gluon")
    proc = subprocess.Popen(MX_TRAIN + ["--hosts", "2", "--horovod", "2", "--code", example, "--base-dir", root],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out = finish(proc)[0]
    assert proc.returncode == 0, out[-4000:]
    assert out.count("weights [[2.0, -3.0, 0.5]]") == 4  # every rank learned y = 2 x1 - 3 x2 + 0.5 x3 + 1
    assert sorted(os.listdir(os.path.join(root, "algo-1", "model"))) == [
        "model-0000.params", "model-shapes.json", "model-symbol.json"]
