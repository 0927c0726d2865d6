"""The ``train`` command's own arguments: the platform gives none, an ``ENTRYPOINT ["train"]`` image
gives ``train``; ``--help`` says what it does; anything else is a usage error, not a job."""

import os
import signal
import subprocess

from .support import TRAIN, failure_first_line, pid_alive, wait_until


def test_help_prints_what_train_does_and_runs_no_job(job):
    job.add_script("train.py", "open('ran', 'w').close()\n")
    job.entry("train.py")
    job.write_config()
    proc = subprocess.run(TRAIN + ["--help"], env=job.env(), capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout.splitlines()[0]) == (0, "usage: train [--help]")
    assert "output/success or output/failure" in proc.stdout
    assert not os.path.exists(job.path("code", "ran"))
    assert not os.path.lexists(job.path("output", "success"))


def test_a_lone_train_argument_is_what_an_entrypoint_image_receives(job):
    job.add_script("train.py", "print('ran')\n")
    job.entry("train.py")
    job.write_config()
    proc = subprocess.run(TRAIN + ["train"], env=job.env(), capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "ran\n")


def test_any_other_argument_is_a_usage_error_with_a_failure_file(job):
    job.add_script("train.py", "open('ran', 'w').close()\n")
    job.entry("train.py")
    job.write_config()
    proc = subprocess.run(TRAIN + ["--epochs", "3"], env=job.env(), capture_output=True, text=True, timeout=60)
    first = failure_first_line(job.base)
    assert (proc.returncode, first) == (
        2, "Configuration error: train takes no arguments (see train --help), got '--epochs 3'")
    assert not os.path.exists(job.path("code", "ran"))


def run_with_closed(job, redirect):
    """``train`` with a standard stream closed (``>&-``), as a platform or a shell may start it."""
    job.write_config()
    return subprocess.run(["sh", "-c", 'exec "$@" ' + redirect, "sh"] + TRAIN, env=job.env(),
                          capture_output=True, text=True, timeout=60)


def test_with_stdout_closed_the_job_runs_and_fails_as_it_should(job):
    job.add_script("train.py", "import sys\nprint('to stdout')\nsys.exit('bad epochs')\n")
    job.entry("train.py")
    proc = run_with_closed(job, ">&-")
    first = failure_first_line(job.base)
    assert (proc.returncode, first) == (1, "User script failed: train.py exited with status 1: SystemExit: bad epochs")
    assert "ERROR mx_training_toolkit: User script failed" in proc.stderr
    assert "bad epochs" in proc.stderr


def test_with_stderr_closed_the_launchers_lines_go_to_stdout(job):
    job.add_script("train.py", "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n")
    job.entry("train.py")
    proc = run_with_closed(job, "2>&- <&-")
    assert proc.returncode == 0
    assert os.path.exists(job.path("output", "success"))
    lines = proc.stdout.splitlines()
    assert "to stdout" in lines and "to stderr" not in proc.stdout
    assert lines[-1].endswith("INFO mx_training_toolkit: job finished successfully")


def stop_bits(pid):
    """(blocked, caught): whether ``pid`` blocks SIGTERM and whether it has a handler for it."""
    with open("/proc/{}/status".format(pid)) as f:
        fields = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    bit = 1 << (15 - 1)
    return bool(int(fields["SigBlk"], 16) & bit), bool(int(fields["SigCgt"], 16) & bit)


def test_a_stop_signal_during_start_up_stops_the_job_with_an_outcome(job):
    """In the first tens of milliseconds, SIGTERM killed train by its default action: no failure
    file, and a success left by an earlier run stayed. It is held back until the handlers exist."""
    job.add_script("train.py", "open('ran', 'w').close()\n")
    job.entry("train.py")
    job.write_config()
    os.makedirs(job.path("output"))
    open(job.path("output", "success"), "w").close()
    proc = subprocess.Popen(TRAIN, env=job.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while True:  # the first moment train either blocks SIGTERM or handles it: no sooner
        try:
            if any(stop_bits(proc.pid)):
                break
        except (OSError, KeyError):
            pass
        assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    first = failure_first_line(job.base)
    assert (proc.returncode, first) == (143, "Job stopped: the launcher received SIGTERM before the job finished")
    assert not os.path.exists(job.path("output", "success"))


def test_sigterm_then_sighup_back_to_back_reports_sigterm(job):
    """Python runs pending handlers in signal-number order; the first to arrive decides."""
    job.add_script("train.py", "import time\nprint('ready', flush=True)\ntime.sleep(60)\n")
    job.entry("train.py")
    job.write_config()
    proc = subprocess.Popen(TRAIN, env=job.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    os.kill(proc.pid, signal.SIGTERM)
    os.kill(proc.pid, signal.SIGHUP)
    proc.communicate(timeout=60)
    first = failure_first_line(job.base)
    assert (proc.returncode, first) == (
        143, "Job stopped: the launcher received SIGTERM before the job finished; train.py was killed by SIGTERM "
             "(exit status 143)")


def test_after_train_is_sigkilled_nothing_it_started_runs_on(job, tmp_path):
    """Its direct children die with it (PR_SET_PDEATHSIG); a script's own child, in the script's
    session, was re-parented to init and ran on. The watcher SIGKILLs the job's sessions."""
    pid_file = tmp_path / "grandchild.pid"
    job.add_script("train.py", "import subprocess, time\n"
                               "p = subprocess.Popen(['sleep', '120'])\n"
                               "open({!r}, 'w').write(str(p.pid))\n"
                               "print('ready', flush=True)\n"
                               "time.sleep(120)\n".format(str(pid_file)))
    job.entry("train.py")
    job.write_config()
    proc = subprocess.Popen(TRAIN, env=job.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        grandchild = int(pid_file.read_text())
        assert pid_alive(grandchild)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert wait_until(lambda: not pid_alive(grandchild), 15), "the script's own child outlived train"
