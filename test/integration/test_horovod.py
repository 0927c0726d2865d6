"""Horovod jobs (the platform's mpi option) through ``mx-train``: ranks started by each host's
launcher, no mpirun, no ssh. Needs Horovod (scripts/install_horovod.sh; .ci/run installs it)."""

import glob
import json
import os
import re
import signal
import subprocess
import time

import pytest

from mx_training_toolkit.ports import free_ps_port

from .support import MX_TRAIN, RESOURCES, Job, assert_no_process_left, failure_first_line, finish, pid_alive, \
    processes_with, read

HOROVOD_CODE = os.path.join(RESOURCES, "horovod")
HERE_TEST = os.path.dirname(os.path.abspath(__file__))

if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):  # CI installs Horovod: missing, it fails
    pytest.importorskip("horovod.mxnet")


def start(tmp_path, entry, *extra, hosts=2, ranks=2):
    root = str(tmp_path / "hosts")
    argv = MX_TRAIN + ["--code", HOROVOD_CODE, "--entry-point", entry, "--hosts", str(hosts),
                       "--horovod", str(ranks), "--base-dir", root] + list(extra)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL), root


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
    cause = "User script failed: allreduce.py (rank 2) on algo-2 exited with status 1: ValueError: rank 2 fails on purpose"
    assert failure_first_line(os.path.join(root, "algo-2")) == cause
    assert failure_first_line(os.path.join(root, "algo-1")) == "Job failed on algo-2: " + cause
    assert "ValueError: rank 2 fails on purpose" in read(root, "algo-1", "output", "failure")
    assert time.monotonic() - began < 60
    assert_no_process_left(root)


def other_failures(base):
    """The lines of the failure file's block of other failures under ``base`` (none: [])."""
    lines = read(base, "output", "failure").splitlines()
    if "Other failures:" not in lines:
        return []
    block = lines[lines.index("Other failures:") + 1:]
    return block[:block.index("")] if "" in block else block


def test_consequences_that_arrive_before_their_cause_are_held_and_listed_below_it(tmp_path):
    # Ranks 0 and 1 (algo-1) raise Horovod's own error at once; rank 2 (algo-2) fails for its own
    # reason 1 s later (2 s within the first host's settle time), and rank 3 errors out when the
    # others are gone. Rank 2's failure is the root cause everywhere; the consequences that reached
    # the first host before it are listed below it, each rank once.
    proc, root = start(tmp_path, "allreduce.py", "--hp", "consequence_ranks=0,1", "--hp", "fail_rank=2",
                       "--hp", "sleep=1")
    out = finish(proc)[0]
    assert proc.returncode == 1, out[-4000:]
    cause = "User script failed: allreduce.py (rank 2) on algo-2 exited with status 1: ValueError: rank 2 fails on purpose"
    assert failure_first_line(os.path.join(root, "algo-2")) == cause
    assert failure_first_line(os.path.join(root, "algo-1")) == "Job failed on algo-2: " + cause
    others = other_failures(os.path.join(root, "algo-1"))
    consequence = re.compile(r"  User script failed: allreduce\.py \(rank ([013])\) on algo-[12] exited with status 1: "
                             r"(horovod\.common\.exceptions\.HorovodInternalError|mxnet\.base\.MXNetError): ")
    assert others and all(consequence.match(line) for line in others), others
    assert len({consequence.match(line).group(1) for line in others}) == len(others)  # each rank once
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
    assert failure_first_line(os.path.join(root, "algo-2")) == cause
    assert failure_first_line(os.path.join(root, "algo-1")) == "Job failed on algo-2: " + cause
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
    assert failure_first_line(os.path.join(root, "algo-1")) == ("Job stopped: the launcher received SIGTERM before the job finished; "
                                          "allreduce.py was killed by SIGTERM (exit status 143)")
    assert failure_first_line(os.path.join(root, "algo-2")) == "Job failed on algo-1: Job stopped: the launcher received SIGTERM"
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
    assert failure_first_line(os.path.join(root, "algo-1")) == cause
    assert failure_first_line(os.path.join(root, "algo-2")) == "Job failed on algo-1: " + cause
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


# ---- the ranks' environment, as the reference's mpirun gives it -----------------------------

ADDRESSES = {"algo-1": "127.0.0.2", "algo-2": "127.0.0.3"}
# What the launchers inherit: the platform's variables, and values the launcher must replace.
PLATFORM = {"TRAINING_JOB_NAME": "platform-job", "AWS_DEFAULT_REGION": "us-east-2", "NCCL_DEBUG": "TRACE",
            "OMPI_COMM_WORLD_RANK": "99", "MX_TRAINING_HOST_ADDRESSES": json.dumps(ADDRESSES)}


def _start_hosts(tmp_path, instance_type, options):
    """A 2-host x 2-rank job of env_dump.py, started with ``train`` on each host -> (jobs, procs)."""
    port = free_ps_port()
    jobs = []
    for host in ADDRESSES:
        job = Job(tmp_path / host)
        job.add_script("env_dump.py", open(os.path.join(HOROVOD_CODE, "env_dump.py")).read())
        job.entry("env_dump.py")
        job.hyperparameters.update(sagemaker_mpi_enabled="true", sagemaker_mpi_num_of_processes_per_host="2",
                                   sagemaker_mpi_custom_mpi_options=json.dumps(options), _ps_port=str(port),
                                   sagemaker_job_name='"hp-job"')
        job.resource_config = {"current_host": host, "hosts": list(ADDRESSES), "network_interface_name": "lo",
                               "current_instance_type": instance_type}
        jobs.append(job)
    return jobs, [job.start(**PLATFORM) for job in jobs]


EFA = {"FI_PROVIDER": "efa", "NCCL_PROTO": "simple", "FI_EFA_USE_DEVICE_RDMA": "1"}


@pytest.mark.parametrize("instance_type,options,variables,ignored", [
    # An EFA instance type; the SDK's docstring example (-verbose is accepted without a word), a
    # user's -x over the launcher's FI variable, and one of mpirun's own options, ignored.
    ("ml.p4d.24xlarge", "-verbose --NCCL_DEBUG=WARN -x FI_EFA_USE_DEVICE_RDMA=0 --bind-to none",
     dict(EFA, NCCL_DEBUG="WARN", FI_EFA_USE_DEVICE_RDMA="0"), "--bind-to none"),
    # Not an EFA instance type, no options: NCCL_DEBUG=INFO over the inherited TRACE.
    ("ml.c5.xlarge", "", {"NCCL_DEBUG": "INFO"}, None),
])
def test_the_whole_environment_of_every_rank_of_a_2_by_2_job(tmp_path, instance_type, options, variables, ignored):
    jobs, procs = _start_hosts(tmp_path, instance_type, options)
    outputs = []
    try:
        for proc in procs:
            outputs.append(b"".join(proc.communicate(timeout=180)).decode(errors="replace"))
    finally:
        for proc in procs:
            proc.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    if ignored:
        assert "ignored (no mpirun here): {}".format(ignored) in outputs[0]
        assert "-verbose" not in outputs[0].split("ignored (no mpirun here)")[1].splitlines()[0]
    for index, job in enumerate(jobs):
        given = job.env(**PLATFORM)
        for local in range(2):
            rank = index * 2 + local
            with open(job.path("output", "data", "env-rank-{}.json".format(rank))) as f:
                report = json.load(f)
            assert (report["rank"], report["size"], report["local_rank"], report["local_size"]) == (rank, 4, local, 2)
            env = report["environ"]
            assert [k for k in given if k not in env] == []  # nothing inherited is taken away
            changed = {k: v for k, v in env.items() if given.get(k) != v}
            host = "algo-{}".format(index + 1)
            expected = {
                "HOROVOD_RANK": str(rank), "HOROVOD_SIZE": "4", "HOROVOD_LOCAL_RANK": str(local),
                "HOROVOD_LOCAL_SIZE": "2", "HOROVOD_CROSS_RANK": str(index), "HOROVOD_CROSS_SIZE": "2",
                "HOROVOD_HOSTNAME": host, "HOROVOD_GLOO_RENDEZVOUS_ADDR": "127.0.0.2",
                "HOROVOD_GLOO_RENDEZVOUS_PORT": job.hyperparameters["_ps_port"],
                "HOROVOD_CONTROLLER": "gloo", "HOROVOD_CPU_OPERATIONS": "gloo", "HOROVOD_GLOO_IFACE": "lo",
                "HOROVOD_GLOO_TIMEOUT_SECONDS": "120",
                "OMPI_COMM_WORLD_RANK": str(rank), "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": str(local),
                "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
                "NCCL_MIN_NRINGS": "4", "NCCL_SOCKET_IFNAME": "lo",
                "CURRENT_HOST": host, "SAGEMAKER_JOB_NAME": "hp-job", "SAGEMAKER_REGION": "us-east-2",
                **variables}
            sm = {k for k in changed if k.startswith("SM_")}
            assert {k: v for k, v in changed.items() if k not in sm} == dict(
                expected, PYTHONPATH=job.code_dir, MX_TRAINING_STATUS_FILE=changed["MX_TRAINING_STATUS_FILE"],
                MX_TRAINING_STACKS_FILE=changed["MX_TRAINING_STACKS_FILE"])
            assert changed["MX_TRAINING_STATUS_FILE"].endswith("worker-status.rank{}".format(rank))
            assert changed["MX_TRAINING_STACKS_FILE"].endswith("stacks-rank{}".format(rank))
            assert (env["SM_CURRENT_HOST"], env["SM_NUM_GPUS"], env["SM_CURRENT_INSTANCE_TYPE"]) == (
                host, "0", instance_type)
            assert json.loads(env["SM_TRAINING_ENV"])["job_name"] == "platform-job"
