"""Parameter-server jobs on emulated hosts (loopback addresses), through ``mx-train``: real
schedulers, servers and workers, real faults."""

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from .support import ADDRESSES, MX_TRAIN, PS_CODE, assert_no_process_left, finish, free_port, processes_with, read, \
    two_host_jobs

def with_parameter_server(job):
    """Switch the job's parameter server on, its scheduler on a free port."""
    job.hyperparameters["sagemaker_parameter_server_enabled"] = "true"
    job.hyperparameters["_ps_port"] = str(free_port())


def start_job(tmp_path, hosts, *extra, entry="dist_sum.py"):
    root = str(tmp_path / "hosts")
    argv = MX_TRAIN + ["--code", PS_CODE, "--entry-point", entry, "--hosts", str(hosts), "--base-dir", root] + list(extra)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, root


@pytest.mark.parametrize("hosts", [2, 3])
def test_dist_sync_job_sums_over_workers(tmp_path, hosts):
    proc, root = start_job(tmp_path, hosts, "--parameter-server", "--hp", "steps=10")
    out, _ = proc.communicate(timeout=180)
    text = out.decode()
    assert proc.returncode == 0, text[-4000:]
    expected = sum(range(1, hosts + 1))
    ranks = set()
    for i in range(hosts):
        host = "algo-{}".format(i + 1)
        assert os.path.exists(os.path.join(root, host, "output", "success")), host
        result = json.loads(read(root, host, "output", "data", "sum.json"))
        assert result["expected"] == expected
        assert result["sum"] == [[expected] * 3] * 2
        ranks.add(result["rank"])
        saved = sorted(os.listdir(os.path.join(root, host, "model")))
        assert saved == (["model-0001.params", "model-symbol.json"] if i == 0 else [])
    assert ranks == set(range(hosts))
    assert_no_process_left(root, "DMLC_ROLE")


def test_legacy_script_on_two_hosts_gets_the_parameter_server(tmp_path):
    proc, root = start_job(tmp_path, 2, entry="legacy_dist.py")
    out, _ = proc.communicate(timeout=180)
    text = out.decode()
    assert proc.returncode == 0, text[-4000:]
    assert "mode: legacy" in text
    assert "legacy_dist: rank 0 pulled [3.0, 3.0, 3.0]" in text
    assert sorted(os.listdir(os.path.join(root, "algo-1", "model"))) == [
        "model-0000.params", "model-shapes.json", "model-symbol.json"]
    assert os.listdir(os.path.join(root, "algo-2", "model")) == []
    assert_no_process_left(root, "DMLC_ROLE")


def _wait_for_training(proc, root, marker=b"dist_sum: pulled sum"):
    """Read the job's output until every host's worker is past the first kvstore step."""
    lines = []
    deadline = time.monotonic() + 120
    seen = 0
    while seen < 2 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            seen += 1
    assert seen == 2, b"".join(lines).decode()[-4000:]
    return lines


def _fault_job(tmp_path, kill_role=None, kill_host=None, extra=()):
    proc, root = start_job(tmp_path, 2, "--parameter-server", "--hp", "steps=400", "--hp", "sleep=0.05", *extra)
    lines = _wait_for_training(proc, root)
    killed_at = time.monotonic()
    if kill_role:
        pids = processes_with("DMLC_ROLE", kill_role, base=os.path.join(root, kill_host))
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGKILL)
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    elapsed = time.monotonic() - killed_at
    return proc.returncode, root, (b"".join(lines) + out).decode(), elapsed


@pytest.mark.parametrize("role,host,other,first_line", [
    ("server", "algo-2", "algo-1", "Parameter server failed: the server process on algo-2 was killed by SIGKILL "
                                   "(exit status 137); probably out of memory; it exited before the workers finished"),
    ("scheduler", "algo-1", "algo-2", "Parameter server failed: the scheduler process on algo-1 was killed by "
                                      "SIGKILL (exit status 137); probably out of memory; it exited before the "
                                      "workers finished"),
])
def test_killing_a_parameter_server_process_ends_the_job_everywhere(tmp_path, role, host, other, first_line):
    status, root, text, elapsed = _fault_job(tmp_path, role, host)
    assert status == 137  # every host exits with the root cause's status
    assert elapsed < 15, text[-3000:]
    assert read(root, host, "output", "failure").splitlines()[0] == first_line
    assert read(root, other, "output", "failure").splitlines()[0] == "Job failed on {}: {}".format(host, first_line)
    assert "mx-train: algo-1 exited with status 137" in text and "mx-train: algo-2 exited with status 137" in text
    assert_no_process_left(root, "DMLC_ROLE")


def test_worker_failing_on_one_host_ends_the_job_everywhere(tmp_path):
    status, root, text, elapsed = _fault_job(tmp_path, extra=("--hp", "exit_on_host=algo-2:3"))
    assert status == 3
    assert elapsed < 15, text[-3000:]
    assert "mx-train: algo-1 exited with status 3" in text and "mx-train: algo-2 exited with status 3" in text
    # os._exit(3) leaves no record: line 1 ends with the last stderr line.
    root_cause = ("User script failed: dist_sum.py on algo-2 exited with status 3: last stderr line: "
                  "dist_sum: exiting with 3 on purpose")
    assert read(root, "algo-2", "output", "failure").splitlines()[0] == root_cause
    assert read(root, "algo-1", "output", "failure").splitlines()[0] == "Job failed on algo-2: " + root_cause
    assert "dist_sum: exiting with 3 on purpose" in read(root, "algo-1", "output", "failure")
    assert_no_process_left(root, "DMLC_ROLE")


def test_port_in_use_gets_a_clear_error(job):
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        job.add_script("train.py", "print('should not run')\n")
        job.entry("train.py")
        job.hyperparameters["sagemaker_parameter_server_enabled"] = "true"
        job.hyperparameters["_ps_port"] = str(port)
        result = job.run()
    assert (result.returncode, result.failure_first_line) == (
        2, "Configuration error: port {} on algo-1 is already in use, so the scheduler cannot start (Address already "
           "in use); choose another with the hyperparameter _ps_port (hyperparameters.json field '_ps_port')".format(
               port))
    assert "should not run" not in result.stdout


def test_host_that_never_resolves_is_a_bounded_clear_error(job):
    job.add_script("train.py", "print('should not run')\n")
    job.entry("train.py")
    job.resource_config = {"current_host": "algo-1", "hosts": ["algo-1", "no-such-host.invalid"]}
    began = time.monotonic()
    result = job.run(MX_TRAINING_HOST_WAIT_SECONDS="2", MX_TRAINING_HOST_ADDRESSES='{"algo-1": "127.0.0.1"}')
    assert time.monotonic() - began < 20
    assert result.returncode == 5
    assert result.failure_first_line == ("Host resolution failed: host name(s) no-such-host.invalid did not "
                                         "resolve within 2 s (resourceconfig.json field 'hosts')")


def test_single_host_parameter_server_job(job):
    job.add_script("dist_sum.py", open(os.path.join(PS_CODE, "dist_sum.py")).read())
    job.entry("dist_sum.py", steps=5)
    with_parameter_server(job)
    result = job.run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(with the parameter server: scheduler, server)" in result.stderr
    assert_no_process_left(job.base, "DMLC_ROLE")


@pytest.mark.parametrize("body,status,words", [
    ("sys.exit(3)", 3, "exited with status 3"),
    ("raise ValueError('bad batch')", 1, "exited with status 1: ValueError: bad batch"),
])
def test_worker_exit_status_survives_mxnet_distributed_shutdown(job, body, status, words):
    # MXNet's distributed kvstore shutdown makes the process exit 0 whatever the script did;
    # the launcher must still report the script's own status.
    job.add_script("train.py", "import sys\nimport mxnet as mx\nkv = mx.kv.create('dist_sync')\n" + body + "\n")
    job.entry("train.py")
    with_parameter_server(job)
    result = job.run()
    assert result.returncode == status
    assert result.failure_first_line == "User script failed: train.py " + words
    if status == 1:
        assert "ValueError: bad batch" in result.failure
        assert "runpy" not in result.failure
    assert_no_process_left(job.base, "DMLC_ROLE")


def test_a_step_failing_on_one_host_before_training_ends_the_job_everywhere(tmp_path):
    # algo-2's code download fails; algo-1 (whose script would wait for a minute) must not wait
    # for algo-2 to join the job until a timeout: it learns of the failure through the channel.
    port = free_port()
    jobs = two_host_jobs(tmp_path, port)
    jobs[1].hyperparameters["sagemaker_submit_directory"] = json.dumps(str(tmp_path / "missing"))
    began = time.monotonic()
    procs = [j.start(MX_TRAINING_HOST_ADDRESSES=ADDRESSES, MX_TRAINING_CHANNEL_SECRET="s") for j in jobs]
    finish(*procs, timeout=60)
    assert time.monotonic() - began < 60  # far below the 300 s algo-1 would wait for algo-2 to join
    assert [p.returncode for p in procs] == [3, 3]
    first = [read(str(tmp_path), host, "output", "failure").splitlines()[0] for host in ("algo-1", "algo-2")]
    assert first[1].startswith("Code download failed: sagemaker_submit_directory")
    assert first[0] == "Job failed on algo-2: " + first[1]


HETERO = ("--parameter-server", "--group", "train1=2", "--group", "data=1",
          "--hp", 'sagemaker_distribution_instance_groups=["train1"]')


def test_only_the_distribution_groups_form_the_parameter_server_job(tmp_path):
    import re

    proc, root = start_job(tmp_path, 3, *HETERO, entry="hetero_sum.py")
    out, _ = proc.communicate(timeout=180)
    text = out.decode()
    assert proc.returncode == 0, text[-4000:]
    seen = {h: json.loads(read(root, h, "output", "data", "hetero.json")) for h in ("algo-1", "algo-2", "algo-3")}
    dmlc = ["DMLC_NODE_HOST", "DMLC_NUM_SERVER", "DMLC_NUM_WORKER", "DMLC_PS_ROOT_PORT", "DMLC_PS_ROOT_URI",
            "DMLC_ROLE"]
    for host, master in (("algo-1", True), ("algo-2", False)):
        assert seen[host]["group"] == "train1" and seen[host]["is_master"] is master
        assert (seen[host]["num_workers"], seen[host]["sum"], seen[host]["dmlc"]) == (2, [3.0, 3.0], dmlc)
    assert {seen["algo-1"]["rank"], seen["algo-2"]["rank"]} == {0, 1}
    alone = seen["algo-3"]
    assert (alone["group"], alone["is_master"], alone["dmlc"], alone["is_hetero"]) == ("data", False, [], True)
    assert alone["distribution_hosts"] == ["algo-1", "algo-2"]
    # The channel covers every host: the host that trained alone ends with the job, not before it.
    trained = max(seen[h]["finished_at"] for h in ("algo-1", "algo-2"))
    assert os.path.getmtime(os.path.join(root, "algo-3", "output", "success")) >= trained
    assert "algo-3 | hetero_sum: algo-3 trains on its own" in text
    # What each launcher waits for while MXNet is imported, and why algo-3 has no parameter server.
    assert re.search(r"algo-1 \| .* parameter server: scheduler, server, worker import MXNet \(a few seconds\), "
                     r"then wait until the scheduler on algo-1 \(127\.0\.0\.2:\d+\) has heard from all 2 servers and "
                     r"2 workers", text), text[-4000:]
    assert re.search(r"algo-2 \| .* parameter server: server, worker import MXNet", text)
    assert re.search(r"algo-3 \| .* parameter server: algo-3 \(instance group data\) is not in the distribution "
                     r"instance groups train1: its script runs on its own", text)
    assert_no_process_left(root, "DMLC_ROLE")


def test_a_failure_on_a_host_outside_the_parameter_server_ends_the_job(tmp_path):
    proc, root = start_job(tmp_path, 3, *HETERO, "--hp", "linger=120", "--hp", "fail-on-host=algo-3:3:2",
                           entry="hetero_sum.py")
    began = time.monotonic()
    try:
        out, _ = proc.communicate(timeout=90)
    finally:
        proc.kill()
    text = out.decode()
    assert proc.returncode == 3, text[-4000:]
    assert time.monotonic() - began < 60, text[-3000:]
    first = "User script failed: hetero_sum.py on algo-3 exited with status 3"
    assert read(root, "algo-3", "output", "failure").splitlines()[0] == first
    for host in ("algo-1", "algo-2"):
        assert read(root, host, "output", "failure").splitlines()[0] == "Job failed on algo-3: " + first
        assert "mx-train: {} exited with status 3".format(host) in text
    assert_no_process_left(root, "DMLC_ROLE")
