"""Hung jobs: the stall watchdog (MX_TRAINING_STALL_TIMEOUT_SECONDS), the heartbeat, and the stacks
of every process the launcher asks for (SIGQUIT, faulthandler) when a job stalls or a process
outlives its grace period. Real jobs: MXNet's parameter server, Horovod, plain scripts."""

import os
import signal
import subprocess
import threading
import time

import pytest

from .support import MX_TRAIN, RESOURCES, Job, assert_no_process_left, failure_first_line, read, read_until

HUNG_CODE = os.path.join(RESOURCES, "hung")
STALLED = "Job stalled: no output from any worker for {} s"
# The watchdog's setting for the multi-host jobs: above what importing MXNet and starting ps-lite or
# Horovod may take, silent, on a loaded machine (the job must stall where the script blocks, not before).
LIMIT = 8
# Generous: the setting plus what a loaded machine may add (the job usually ends within a second or two).
SLACK = 30.0


def blocking_line(script, which=""):
    """The number of the line of ``script`` (in HUNG_CODE) marked ``# BLOCKS HERE`` (+ ``which``)."""
    with open(os.path.join(HUNG_CODE, script)) as f:
        return next(n for n, line in enumerate(f, 1) if "# BLOCKS HERE" + which in line)


class Timed:
    """A process's merged output, each line stamped (``time.monotonic``) as it was read."""

    def __init__(self, argv, env=None):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.decode(errors="replace")))

    def finish(self, timeout=180):
        try:
            self.proc.wait(timeout)
        finally:
            self.proc.kill()
        self._reader.join(10)
        return self.proc.returncode

    @property
    def text(self):
        return "".join(line for _at, line in self.lines)

    def last(self, predicate):
        """When the last line for which ``predicate(line)`` holds was read."""
        return max(at for at, line in self.lines if predicate(line))


def is_worker_output(line):
    """A line of a script's own output in ``mx-train``'s merged stream (not a launcher's log line)."""
    body = line.partition(" | ")[2]
    return body.startswith(("uneven_pulls:", "[rank", "skipped_allreduce:")) and "mx_training_toolkit" not in body


def stall_env(seconds, **extra):
    return {**os.environ, "MX_TRAINING_STALL_TIMEOUT_SECONDS": str(seconds), **extra}


def test_the_7888_hang_ends_on_every_host_with_the_line_where_the_worker_blocks(tmp_path):
    """apache/mxnet #7888: one worker pushes and pulls once more than the other and waits for the
    result; the other waits in ps-lite's exit barrier. Without the watchdog this runs forever."""
    root = str(tmp_path / "hosts")
    job = Timed(MX_TRAIN + ["--code", HUNG_CODE, "--entry-point", "uneven_pulls.py", "--hosts", "2",
                            "--parameter-server", "--base-dir", root], stall_env(LIMIT))
    assert job.finish() == 124, job.text[-4000:]
    for host in ("algo-1", "algo-2"):
        assert failure_first_line(os.path.join(root, host)) == STALLED.format(LIMIT)
        assert "mx-train: {} exited with status 124: {}".format(host, STALLED.format(LIMIT)) in job.text
    # The worker of rank 0 (either host: ps-lite numbers the workers as they register) waits on the
    # pull's result; the pull itself is asynchronous and has no frame of its own.
    where = 'uneven_pulls.py", line {} in <module>'.format(blocking_line("uneven_pulls.py"))
    texts = [read(root, host, "output", "failure") for host in ("algo-1", "algo-2")]
    assert sum(where in text for text in texts) == 1, texts
    for host, text in zip(("algo-1", "algo-2"), texts):
        assert "Stacks of the job's processes on {} (asked with SIGQUIT):".format(host) in text
        assert "--- worker on {}, pid ".format(host) in text and "--- server on {}, pid ".format(host) in text
    assert "--- scheduler on algo-1, pid " in texts[0]
    last_output = job.last(is_worker_output)
    for host in ("algo-1", "algo-2"):
        ended = job.last(lambda line: line.startswith("mx-train: {} exited".format(host)))
        print("{}: {:.2f} s from the last output to the end".format(host, ended - last_output))
        assert LIMIT <= ended - last_output < LIMIT + SLACK
    assert_no_process_left(root)


def test_a_horovod_rank_that_skips_an_allreduce(tmp_path):
    """2 hosts x 1 rank: rank 1 skips the allreduce that rank 0 waits in and waits in the next one. Horovod's own
    stall check is on at 1 s: its warnings, should it print any, are no progress."""
    root = str(tmp_path / "hosts")
    job = Timed(MX_TRAIN + ["--code", HUNG_CODE, "--entry-point", "skipped_allreduce.py", "--hosts", "2",
                            "--horovod", "1", "--base-dir", root], stall_env(LIMIT, HOROVOD_STALL_CHECK_TIME_SECONDS="1"))
    assert job.finish() == 124, job.text[-4000:]
    for host, rank, which in (("algo-1", 0, " (the other ranks)"), ("algo-2", 1, " (the last rank)")):
        text = read(root, host, "output", "failure")
        assert text.splitlines()[0] == STALLED.format(LIMIT)
        assert "--- worker (rank {}) on {}, pid ".format(rank, host) in text
        assert 'skipped_allreduce.py", line {} in <module>'.format(blocking_line("skipped_allreduce.py", which)) in text
    assert "--- rendezvous on algo-1, pid " in read(root, "algo-1", "output", "failure")
    assert_no_process_left(root)


SILENT = """import os, subprocess, sys, time
from mx_training_toolkit.training_utils import heartbeat
print("silent: starting", flush=True)
# A child process keeps the job alive for a while, then the script itself does: no output meanwhile.
subprocess.run(["sh", "-c", 'for i in $(seq 20); do touch "$MX_TRAINING_HEARTBEAT_FILE"; sleep 0.2; done'], check=True)
for _ in range(20):
    heartbeat()
    time.sleep(0.2)
print("silent: done", sys.argv[1:], flush=True)
"""


@pytest.fixture
def silent_job(tmp_path):
    job = Job(tmp_path / "job")
    job.add_script("train.py", SILENT)
    job.entry("train.py")
    return job


def test_a_silent_script_that_calls_the_heartbeat_keeps_running(silent_job):
    result = silent_job.run(MX_TRAINING_STALL_TIMEOUT_SECONDS="3")  # silent for 8 s, a heartbeat every 0.2 s
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == "silent: starting\nsilent: done []\n"  # the script's output, byte for byte
    assert result.succeeded


def test_a_silent_script_without_a_heartbeat_stalls(tmp_path):
    job = Job(tmp_path / "job")
    job.add_script("train.py", "import time\nprint('quiet now', flush=True)\n\ndef wait():\n    time.sleep(600)\n"
                               "\nwait()\n")
    job.entry("train.py")
    began = time.monotonic()
    result = job.run(MX_TRAINING_STALL_TIMEOUT_SECONDS="1.5")
    assert (result.returncode, result.failure_first_line) == (124, STALLED.format(1.5)), result.stderr[-3000:]
    assert time.monotonic() - began < 1.5 + SLACK
    train = job.path("code", "train.py")
    assert result.failure.endswith('  File "{}", line 5 in wait\n  File "{}", line 7 in <module>\n'.format(train, train))
    assert "\n--- worker on algo-1, pid " in result.failure
    assert "stacks of worker on algo-1" in result.stderr  # the log has them too
    assert result.stdout == "quiet now\n"


def test_the_watchdog_off_changes_nothing(silent_job):
    """Unset (or 0): the same silent script runs as before, and its environment has no heartbeat file."""
    silent_job.add_script("train.py", "import os, time\ntime.sleep(2)\n"
                                      "print(os.environ.get('MX_TRAINING_HEARTBEAT_FILE'), flush=True)\n")
    for setting in ({}, {"MX_TRAINING_STALL_TIMEOUT_SECONDS": "0"}):
        result = silent_job.run(**setting)
        assert (result.returncode, result.stdout, result.succeeded) == (0, "None\n", True), result.stderr[-3000:]
        assert "stall" not in result.stderr.lower()


def test_an_unusable_setting_is_a_configuration_error(silent_job):
    result = silent_job.run(MX_TRAINING_STALL_TIMEOUT_SECONDS="30m")
    assert (result.returncode, result.failure_first_line) == (
        2, "Configuration error: MX_TRAINING_STALL_TIMEOUT_SECONDS='30m': expected a number of seconds between 0 "
           "and 604800")


IGNORES_SIGTERM = """import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)

def checkpoint_forever():
    while True:
        time.sleep(0.05)

print("ready", flush=True)
checkpoint_forever()
"""


def test_a_process_that_ignores_sigterm_has_its_stack_in_the_failure_file_after_the_grace(tmp_path):
    job = Job(tmp_path / "job")
    job.add_script("train.py", IGNORES_SIGTERM)
    job.entry("train.py")
    proc = job.start(MX_TRAINING_STOP_GRACE_SECONDS="2")
    read_until(proc.stdout, b"ready\n")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    failure = read(job.base, "", "output", "failure")
    assert (proc.returncode, failure.splitlines()[0]) == (
        143, "Job stopped: the launcher received SIGTERM before the job finished; train.py did not stop within 2 s "
             "and was killed"), err.decode()[-3000:]
    train = job.path("code", "train.py")
    assert '  File "{}", line 6 in checkpoint_forever\n  File "{}", line 9 in <module>\n'.format(train, train) in failure
    assert failure.index("Stacks of the job's processes on algo-1") > 0
    assert out == b""  # read_until took "ready\n": nothing else reached the script's stdout
    assert_no_process_left(job.base)
