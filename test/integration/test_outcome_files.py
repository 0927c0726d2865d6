"""The outcome files of a base directory used before: what an earlier run left never stands for
this run's outcome, and nothing the user wrote is destroyed (docs/contract.md sections 1 and 6)."""

import glob
import os

import pytest

from .support import ADDRESSES, finish, free_port, read, two_host_jobs

BAD_SETTING = ("Configuration error: MX_TRAINING_HOST_WAIT_SECONDS='soon': expected a number of seconds "
               "between 0 and 604800")


def test_a_bad_launcher_setting_replaces_the_previous_runs_failure_file(job):
    job.add_script("train.py", "print('never runs')\n")
    job.entry("train.py")
    os.makedirs(job.path("output"), exist_ok=True)
    with open(job.path("output", "failure"), "w") as f:
        f.write("an old reason from an earlier run\n")
    result = job.run(MX_TRAINING_HOST_WAIT_SECONDS="soon")
    assert (result.returncode, result.failure_first_line) == (2, BAD_SETTING)


def test_a_failure_directory_left_by_an_earlier_run_is_moved_aside_and_the_job_succeeds(job):
    job.add_script("train.py", "print('ran')\n")
    job.entry("train.py")
    os.makedirs(job.path("output", "failure", "kept"))
    with open(job.path("output", "failure", "kept", "notes.txt"), "w") as f:
        f.write("the user's notes")
    result = job.run()
    assert (result.returncode, result.failure) == (0, None)
    assert os.path.isfile(job.path("output", "success"))
    aside, = glob.glob(job.path("output", "failure.directory-*"))
    with open(os.path.join(aside, "kept", "notes.txt")) as f:
        assert f.read() == "the user's notes"
    assert "moved it to {}".format(aside) in result.stderr


def test_a_success_directory_made_by_a_failing_script_is_moved_aside(job):
    job.add_script("train.py", "import os, sys\nos.makedirs('/'.join([os.environ['SM_OUTPUT_DIR'], 'success', 'x']))\n"
                               "sys.exit(3)\n")
    job.entry("train.py")
    result = job.run()
    assert (result.returncode, result.failure_first_line) == (3, "User script failed: train.py exited with status 3")
    assert not os.path.lexists(job.path("output", "success"))
    aside, = glob.glob(job.path("output", "success.directory-*"))
    assert os.path.isdir(os.path.join(aside, "x"))


WRITES_FAILURE = ("import os, time\n"
                  "if os.environ['SM_CURRENT_HOST'] == {host!r}:\n"
                  "    with open(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w') as f:\n"
                  "        f.write('my own reason: the loss diverged\\n')\n"
                  "else:\n"
                  "    time.sleep(1)\n")


@pytest.mark.parametrize("host", ["algo-1", "algo-2"])
def test_one_hosts_own_failure_file_fails_the_job_on_every_host(tmp_path, host):
    """The host whose script wrote output/failure and exited 0 failed alone; the other wrote success."""
    port = free_port()
    jobs = two_host_jobs(tmp_path, port, WRITES_FAILURE.format(host=host))
    procs = [j.start(MX_TRAINING_HOST_ADDRESSES=ADDRESSES) for j in jobs]
    finish(*procs, timeout=60)
    other = "algo-2" if host == "algo-1" else "algo-1"
    assert [p.returncode for p in procs] == [1, 1]
    assert read(str(tmp_path), host, "output", "failure") == "my own reason: the loss diverged\n"  # kept as it is
    assert read(str(tmp_path), other, "output", "failure").splitlines()[0] == (
        "Job failed on {}: User script failed: train.py on {} wrote output/failure and exited 0".format(host, host))
    for name in ("algo-1", "algo-2"):
        assert not os.path.exists(os.path.join(str(tmp_path), name, "output", "success"))
