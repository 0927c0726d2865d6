"""Stopping a job as the platform does (SIGTERM, SIGKILL 120 s later): the workers get the signal
first and the long stop grace; the roles they need stay until they have exited; a failed job ends
within the short failure grace; a second Ctrl-C to ``mx-train`` kills at once."""

import json
import os
import signal
import subprocess
import time

import pytest

from .support import MX_TRAIN, RESOURCES, assert_no_process_left, failure_first_line, read

STOP_CODE = os.path.join(RESOURCES, "stop")
STOP_GRACE, FAILURE_GRACE = "MX_TRAINING_STOP_GRACE_SECONDS", "MX_TRAINING_FAILURE_GRACE_SECONDS"


def add_checkpoint_script(job, **hps):
    with open(os.path.join(STOP_CODE, "checkpoint.py")) as f:
        job.add_script("train.py", f.read())
    job.entry("train.py", **hps)


def wait_for_line(proc, marker, count=1):
    """Read ``proc``'s stdout until ``count`` lines hold ``marker`` -> the lines read."""
    lines = []
    while count:
        line = proc.stdout.readline()
        assert line, b"".join(lines).decode(errors="replace")[-4000:]
        lines.append(line)
        count -= marker in line
    return lines


def sigterm_when_ready(job, settings, timeout):
    """Start ``job`` with ``settings``, SIGTERM it once its checkpoint script is ready -> its stderr."""
    proc = job.start(**settings)
    wait_for_line(proc, b"checkpoint: ready")
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 143, err.decode()[-3000:]
    return err.decode()


@pytest.mark.parametrize("settings,save_seconds", [
    ({}, 15),  # the default grace: 10 s used to kill it before it saved (the 15 s checkpoint)
    ({STOP_GRACE: "30", FAILURE_GRACE: "1"}, 3),  # a stop gets the stop grace, never the failure grace
])
def test_a_script_that_takes_seconds_to_checkpoint_saves_it_on_sigterm(job, settings, save_seconds):
    add_checkpoint_script(job, save_seconds=save_seconds)
    sigterm_when_ready(job, settings, timeout=120)
    assert failure_first_line(job.base) == ("Job stopped: the launcher received SIGTERM before the job "
                                                         "finished; train.py exited successfully")
    with open(job.path("model", "checkpoint")) as f:
        assert f.read() == "saved after SIGTERM\n"


def test_a_script_that_ignores_sigterm_is_killed_at_the_stop_grace(job):
    add_checkpoint_script(job, ignore="yes")
    err = sigterm_when_ready(job, {STOP_GRACE: "2", FAILURE_GRACE: "0"}, timeout=60)
    assert failure_first_line(job.base) == ("Job stopped: the launcher received SIGTERM before the job "
                                                         "finished; train.py did not stop within 2 s and was killed")
    assert "did not stop within 2 s of SIGTERM: killing it" in err
    assert not os.path.exists(job.path("model", "checkpoint"))


def start_mx_train(tmp_path, code, entry, *extra, env=None):
    root = str(tmp_path / "hosts")
    argv = MX_TRAIN + ["--code", code, "--entry-point", entry, "--base-dir", root] + list(extra)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=dict(os.environ, **(env or {})))
    return proc, root


def finish(proc, timeout):
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    return out.decode(errors="replace")


def test_a_parameter_server_job_finishes_its_batch_after_sigterm_and_saves(tmp_path):
    # The platform stops every host: each worker pushes and pulls once more, which needs every
    # server of the job, then saves. The scheduler and servers are stopped only after the workers.
    proc, root = start_mx_train(tmp_path, STOP_CODE, "ps_checkpoint.py", "--hosts", "2", "--parameter-server")
    lines = wait_for_line(proc, b"ps_checkpoint: ready", 2)
    proc.send_signal(signal.SIGTERM)  # mx-train forwards it to both hosts' launchers
    out = b"".join(lines).decode() + finish(proc, 120)
    assert proc.returncode == 143, out[-4000:]
    for host, rank in (("algo-1", 0), ("algo-2", 1)):
        assert read(root, host, "output", "failure").splitlines()[0] == (
            "Job stopped: the launcher received SIGTERM before the job finished; ps_checkpoint.py exited successfully")
        saved = [os.path.join(root, h, "model", "checkpoint-rank{}.json".format(rank)) for h in ("algo-1", "algo-2")]
        found = [p for p in saved if os.path.exists(p)]
        assert len(found) == 1, out[-4000:]  # which host got which rank is ps-lite's choice
        with open(found[0]) as f:
            assert json.load(f) == {"rank": rank, "w": [[3.0] * 3] * 2}
    assert "did not stop within" not in out
    assert_no_process_left(root, "DMLC_ROLE")


def test_a_failure_elsewhere_ends_a_host_that_traps_sigterm_within_the_failure_grace(tmp_path):
    go = str(tmp_path / "go")
    proc, root = start_mx_train(tmp_path, STOP_CODE, "checkpoint.py", "--hosts", "2",
                                "--hp", "save_seconds=100", "--hp", "fail_on=algo-1:3", "--hp", "fail_when=" + go,
                                env={FAILURE_GRACE: "2"})  # the stop grace stays at its default
    lines = wait_for_line(proc, b"checkpoint: ready", 2)
    open(go, "w").close()
    out = b"".join(lines).decode() + finish(proc, 90)
    assert proc.returncode == 3, out[-4000:]
    cause = "User script failed: checkpoint.py on algo-1 exited with status 3"
    assert read(root, "algo-1", "output", "failure").splitlines()[0] == cause
    assert read(root, "algo-2", "output", "failure").splitlines()[0] == "Job failed on algo-1: " + cause
    assert "algo-2 | checkpoint: got SIGTERM on algo-2" in out
    assert "did not stop within 2 s of SIGTERM: killing it" in out
    assert not os.path.exists(os.path.join(root, "algo-2", "model", "checkpoint"))
    assert_no_process_left(root)


def test_a_second_ctrl_c_to_mx_train_kills_the_jobs_at_once(tmp_path):
    proc, root = start_mx_train(tmp_path, STOP_CODE, "checkpoint.py", "--hosts", "2", "--hp", "save_seconds=100")
    lines = wait_for_line(proc, b"checkpoint: ready", 2)
    proc.send_signal(signal.SIGINT)  # the first Ctrl-C: forwarded; the scripts start their 100 s save
    lines += wait_for_line(proc, b"checkpoint: got SIGINT", 2)
    proc.send_signal(signal.SIGINT)
    out = b"".join(lines).decode() + finish(proc, 60)
    assert proc.returncode == 130, out[-4000:]
    for host in ("algo-1", "algo-2"):
        assert read(root, host, "output", "failure").splitlines()[0] == (
            "Job stopped: the launcher received SIGINT before the job finished; checkpoint.py was killed at once "
            "on a second SIGINT")
        assert not os.path.exists(os.path.join(root, host, "model", "checkpoint"))
    assert "mx-train: algo-1 exited with status 130" in out and "mx-train: algo-2 exited with status 130" in out
    assert_no_process_left(root)


def test_horovod_ranks_finish_their_step_after_sigterm_and_save(tmp_path):
    pytest.importorskip("horovod.mxnet")
    proc, root = start_mx_train(tmp_path, STOP_CODE, "hvd_checkpoint.py", "--hosts", "2", "--horovod", "2")
    lines = wait_for_line(proc, b"hvd_checkpoint: ready", 4)
    proc.send_signal(signal.SIGTERM)
    out = b"".join(lines).decode() + finish(proc, 120)
    assert proc.returncode == 143, out[-4000:]
    for host, ranks in (("algo-1", (0, 1)), ("algo-2", (2, 3))):
        assert read(root, host, "output", "failure").splitlines()[0] == (
            "Job stopped: the launcher received SIGTERM before the job finished; hvd_checkpoint.py exited "
            "successfully")
        for rank in ranks:
            with open(os.path.join(root, host, "model", "checkpoint-rank{}.json".format(rank))) as f:
                assert json.load(f) == {"rank": rank, "sum": [10.0] * 3}
    assert_no_process_left(root)


# A role that records when it got SIGTERM; a worker that, on SIGTERM, checks that the role still
# runs, takes a moment, then exits 0.
ROLE = ("import os, signal, sys, time\n"
        "def on_term(s, f):\n"
        "    open(sys.argv[1], 'w').write('%.6f' % time.time())\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        "open(sys.argv[1] + '.ready', 'w').close()\n"
        "time.sleep(60)\n")
WORKER_SCRIPT = ("import os, signal, sys, time\n"
                 "def on_term(s, f):\n"
                 "    if sys.argv[3] == 'wait':  # the role should get SIGTERM while we still run\n"
                 "        deadline = time.time() + 20\n"
                 "        while not os.path.exists(sys.argv[1]) and time.time() < deadline:\n"
                 "            time.sleep(0.01)\n"
                 "        seen = 'stopped' if os.path.exists(sys.argv[1]) else 'running'\n"
                 "    else:  # the role should still run while we finish\n"
                 "        time.sleep(0.3)\n"
                 "        seen = 'stopped' if os.path.exists(sys.argv[1]) else 'running'\n"
                 "    open(sys.argv[2], 'w').write('%s %.6f' % (seen, time.time()))\n"
                 "    sys.exit(0)\n"
                 "signal.signal(signal.SIGTERM, on_term)\n"
                 "open(sys.argv[2] + '.ready', 'w').close()\n"
                 "time.sleep(60)\n")


@pytest.mark.parametrize("how,expect", [
    ({"first": ("worker",), "linger": 0.0}, "running"),  # a stop: the worker first
    ({}, "stopped"),  # a failure: everything together
])
def test_the_supervisor_stops_the_workers_first_only_when_told(tmp_path, how, expect):
    import io
    import sys

    from mx_training_toolkit.plan import ProcessSpec
    from mx_training_toolkit.supervisor import Supervisor

    role_file, worker_file = str(tmp_path / "server"), str(tmp_path / "worker")
    supervisor = Supervisor("algo-1", 20.0, stdout=io.BytesIO(), stderr=io.BytesIO())
    supervisor.start(ProcessSpec("server", (sys.executable, "-c", ROLE, role_file), dict(os.environ), str(tmp_path)))
    mode = "wait" if expect == "stopped" else "check"
    supervisor.start(ProcessSpec("worker", (sys.executable, "-c", WORKER_SCRIPT, role_file, worker_file, mode),
                                 dict(os.environ), str(tmp_path)))
    deadline = time.monotonic() + 30
    while not (os.path.exists(role_file + ".ready") and os.path.exists(worker_file + ".ready")):
        assert time.monotonic() < deadline, "the processes never got ready"
        time.sleep(0.02)
    supervisor.stop(signal.SIGTERM, 20.0, **how)
    with open(worker_file) as f:
        seen, worker_done = f.read().split()
    with open(role_file) as f:
        role_stopped = float(f.read())
    assert seen == expect  # what the worker saw of the role while it handled SIGTERM
    assert (role_stopped >= float(worker_done)) == (expect == "running")
    assert all(c.popen.returncode == 0 and not c.killed for c in supervisor.children)
