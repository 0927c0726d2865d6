"""The launchers' own channel between hosts: failures reach hosts that join late, and strangers
on its port do not end the job."""

import json
import time

from .support import ADDRESSES, connect_to_channel, finish, free_port, read, read_line, read_until, \
    script_waiting_for, two_host_jobs


def test_a_host_joining_after_the_job_failed_hears_of_it_at_once(tmp_path):
    first, second = two_host_jobs(tmp_path, free_port())
    first.hyperparameters["sagemaker_submit_directory"] = json.dumps(str(tmp_path / "missing"))
    # The hosts' hyperparameters differ (algo-1's code is missing): they share the channel's key this way.
    p1 = first.start(MX_TRAINING_HOST_ADDRESSES=ADDRESSES, MX_TRAINING_CHANNEL_SECRET="s")
    # algo-1 logs its download's first step, after its channel listens; the download fails a moment
    # later. Only then does algo-2 start, late, as a slow container would.
    early = read_until(p1.stderr, b"code: " + first.code_dir.encode(), timeout=60)
    p2 = second.start(MX_TRAINING_HOST_ADDRESSES=ADDRESSES, MX_TRAINING_CHANNEL_SECRET="s")
    out1, _out2 = finish(p1, p2, timeout=60)  # far below the 300 s a missing host would be waited for
    assert (p1.returncode, p2.returncode) == (3, 3)
    # algo-2 joined after the failure: algo-1 told it at once, instead of counting it in.
    assert "channel: algo-2 joined" not in early.decode() + out1, out1
    assert read(str(tmp_path), "algo-2", "output", "failure").splitlines()[0] == (
        "Job failed on algo-1: Code download failed: sagemaker_submit_directory '{}' does not exist".format(
            tmp_path / "missing"))


def test_strangers_on_the_channel_port_do_not_end_the_job(tmp_path):
    port = free_port()
    go = tmp_path / "go"
    jobs = two_host_jobs(tmp_path, port, script_waiting_for(go))
    procs = [j.start(MX_TRAINING_HOST_ADDRESSES=ADDRESSES) for j in jobs]
    try:
        for payload in (b"", b"[1]\n", b'{"t": "hello", "host": "algo-9"}\n', b'{"t": "failed", "host": "x"}\n',
                        b"\xff\xfe garbage\n"):
            with connect_to_channel(port, source="127.0.0.1") as s:
                assert json.loads(read_line(s))["t"] == "challenge"  # algo-1's launcher accepted it
                s.sendall(payload)
        read_until(procs[0].stdout, b"worker ran")  # the job runs on after the strangers left
    finally:
        go.touch()
    finish(*procs, timeout=60)
    assert [p.returncode for p in procs] == [0, 0]
    for host in ("algo-1", "algo-2"):
        assert read(str(tmp_path), host, "output", "failure") is None


def test_a_host_with_another_number_of_horovod_ranks_fails_the_job_naming_both_counts(tmp_path):
    # Hosts with other GPU counts, as a host told another sagemaker_mpi_num_of_processes_per_host
    # (they share the channel's key through MX_TRAINING_CHANNEL_SECRET). Horovod need not be
    # installed: the counts are compared as soon as the channel is open, before any rank starts.
    jobs = two_host_jobs(tmp_path, free_port())
    for job, ranks in zip(jobs, ("1", "2")):
        job.hyperparameters.update(sagemaker_mpi_enabled="true", sagemaker_mpi_num_of_processes_per_host=ranks)
    began = time.monotonic()
    procs = [j.start(MX_TRAINING_HOST_ADDRESSES=ADDRESSES, MX_TRAINING_CHANNEL_SECRET="s") for j in jobs]
    finish(*procs)
    assert time.monotonic() - began < 20
    assert [p.returncode for p in procs] == [2, 2]
    cause = ("Configuration error: Horovod: algo-2 starts 2 ranks, but the first host algo-1 starts 1; every host "
             "must start the same number (give every host as many GPUs, or set the hyperparameter "
             "sagemaker_mpi_num_of_processes_per_host)")
    assert read(str(tmp_path), "algo-2", "output", "failure").splitlines()[0] == cause
    assert read(str(tmp_path), "algo-1", "output", "failure").splitlines()[0] == "Job failed on algo-2: " + cause


def test_hosts_told_the_platforms_job_name_differently_still_prove_the_same_job(tmp_path):
    # The channel's proof is bound to the job's identity from the files (sagemaker_job_name, hosts,
    # _ps_port), never to TRAINING_JOB_NAME: a container started by hand without it still joins.
    script = "import json, os\nprint('job_name', json.loads(os.environ['SM_TRAINING_ENV'])['job_name'], flush=True)\n"
    jobs = two_host_jobs(tmp_path, free_port(), script)
    for job in jobs:
        job.hyperparameters["sagemaker_job_name"] = json.dumps("hp-job")
    procs = [jobs[0].start(MX_TRAINING_HOST_ADDRESSES=ADDRESSES, TRAINING_JOB_NAME="platform-job"),
             jobs[1].start(MX_TRAINING_HOST_ADDRESSES=ADDRESSES)]
    outputs = [p.communicate(timeout=60)[0].decode() for p in procs]
    finish(*procs)
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert "job_name platform-job" in outputs[0] and "job_name hp-job" in outputs[1]


def test_a_host_whose_configuration_fails_tells_the_first_host_before_joining(tmp_path):
    """algo-2's inputdataconfig.json names a channel it does not have: a configuration error before it
    ever joined. It once left algo-1 waiting for it for the whole host wait (300 s by default)."""
    first, second = two_host_jobs(tmp_path, free_port())
    second.input_data_config = {"train": {"TrainingInputMode": "File"}}  # no input/data/train on algo-2
    began = time.monotonic()
    p1 = first.start(MX_TRAINING_HOST_ADDRESSES=ADDRESSES)
    p2 = second.start(MX_TRAINING_HOST_ADDRESSES=ADDRESSES)
    finish(p1, p2, timeout=60)
    assert time.monotonic() - began < 30
    cause = read(str(tmp_path), "algo-2", "output", "failure").splitlines()[0]
    assert cause.startswith("Configuration error: inputdataconfig.json")
    assert (p1.returncode, p2.returncode) == (2, 2)
    assert read(str(tmp_path), "algo-1", "output", "failure").splitlines()[0] == "Job failed on algo-2: " + cause
