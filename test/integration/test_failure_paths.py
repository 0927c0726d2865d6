"""The failure path through the real ``train``: signals at every moment, orphans, the success and
failure files a script tampered with, statuses above 128, launcher settings, unused roles."""

import os
import signal
import subprocess
import time

import pytest

from .support import MX_TRAIN, assert_no_process_left, failure_first_line, free_port, wait_gone, wait_until

# A daemon in a session of its own that notes SIGTERM in output/data/daemon.sigterm and goes on:
# only the launcher's SIGKILL ends it.
DAEMON = ("import os, subprocess, sys\n"
          "noted = os.path.join(os.environ['SM_OUTPUT_DATA_DIR'], 'daemon.sigterm')\n"
          "d = subprocess.Popen([sys.executable, '-c', 'import signal, sys, time; "
          "signal.signal(signal.SIGTERM, lambda *_: open(sys.argv[1], \"w\").close()); time.sleep(120)', noted], "
          "start_new_session=True)\n"
          "open(os.path.join(os.environ['SM_OUTPUT_DATA_DIR'], 'daemon.pid'), 'w').write(str(d.pid))\n"
          "print('script: leaving', flush=True)\n")


@pytest.mark.parametrize("exit_code,status,line", [
    (0, 143, "Job stopped: the launcher received SIGTERM while it was stopping the job's remaining processes "
             "(the job itself had finished)"),
    (3, 3, "User script failed: train.py exited with status 3 (the launcher then received SIGTERM)"),
])
def test_a_signal_during_the_final_cleanup(job, exit_code, status, line):
    job.add_script("train.py", DAEMON + "sys.exit({})\n".format(exit_code))
    job.entry("train.py")
    proc = job.start(MX_TRAINING_FAILURE_GRACE_SECONDS="4")  # a finished job's leftovers get the failure grace
    assert proc.stdout.readline() == b"script: leaving\n"
    # The daemon got the launcher's SIGTERM: the launcher is in its final stop, waiting out the grace.
    assert wait_until(lambda: os.path.exists(job.path("output", "data", "daemon.sigterm")), 30)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err.decode()[-2000:]
    assert "Traceback" not in err.decode()
    assert failure_first_line(job.base) == line
    assert not os.path.exists(job.path("output", "success"))
    with open(job.path("output", "data", "daemon.pid")) as f:
        assert wait_gone(int(f.read()), 2.0)


def test_orphans_are_reaped_as_they_exit(job):
    # 300 short-lived orphans re-parented to the launcher (a subreaper) must not pile up as zombies.
    # The script waits until every orphan has exited and the launcher has reaped it (60 s at most).
    job.add_script("train.py", "import os, subprocess, time\n"
                   "for _ in range(300):\n"
                   "    subprocess.run(['sh', '-c', 'sleep 0.01 &'])\n"
                   "me, launcher = os.getpid(), os.getppid()\n"
                   "def under_the_launcher():\n"
                   "    live = zombies = 0\n"
                   "    for pid in filter(str.isdigit, os.listdir('/proc')):\n"
                   "        try:\n"
                   "            fields = open('/proc/%s/stat' % pid).read().rsplit(')', 1)[1].split()\n"
                   "        except OSError:\n"
                   "            continue\n"
                   "        if int(fields[1]) == launcher and int(pid) != me:\n"
                   "            zombies += fields[0] == 'Z'\n"
                   "            live += fields[0] != 'Z'\n"
                   "    return live, zombies\n"
                   "deadline = time.monotonic() + 60\n"
                   "while under_the_launcher() != (0, 0) and time.monotonic() < deadline:\n"
                   "    time.sleep(0.05)\n"
                   "print('orphans, zombies under the launcher:', *under_the_launcher(), flush=True)\n")
    job.entry("train.py")
    result = job.run()
    assert result.returncode == 0, result.stderr[-2000:]
    assert "orphans, zombies under the launcher: 0 0\n" in result.stdout


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT])
def test_sighup_and_sigquit_stop_the_job_like_sigterm(job, sig):
    job.add_script("train.py", resource="trap_sigterm.py")
    job.entry("train.py")
    proc = job.start()
    assert proc.stdout.readline().startswith(b"trap_sigterm: ready")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 7, err.decode()[-2000:]  # the script's SIGTERM handler ran and chose 7
    assert b"got SIGTERM" in out
    assert failure_first_line(job.base) == ("Job stopped: the launcher received {} before the job finished; "
                               "train.py exited with status 7".format(signal.Signals(sig).name))


def test_the_script_dies_with_a_sigkilled_launcher(job):
    job.add_script("train.py", "import os, time\n"
                   "print('pid', os.getpid(), flush=True)\ntime.sleep(120)\n")
    job.entry("train.py")
    proc = job.start()
    pid = int(proc.stdout.readline().split()[1])
    proc.kill()
    proc.communicate(timeout=10)
    assert wait_gone(pid, 5.0)


def test_a_script_that_wrote_success_and_failed_leaves_no_success_file(job):
    job.add_script("train.py", "import os, sys\n"
                   "open(os.path.join(os.environ['SM_OUTPUT_DIR'], 'success'), 'w').close()\nsys.exit(1)\n")
    job.entry("train.py")
    result = job.run()
    assert result.returncode == 1
    assert result.failure_first_line == "User script failed: train.py exited with status 1"
    assert not result.succeeded


def test_success_and_failure_files_are_written_without_following_links(job, tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("the user's data\n")
    job.add_script("train.py", "import os\n"
                   "out = os.environ['SM_OUTPUT_DIR']\n"
                   "os.symlink({!r}, os.path.join(out, 'success'))\n".format(str(precious)))
    job.entry("train.py")
    result = job.run()
    assert result.returncode == 0, result.stderr[-2000:]
    assert precious.read_text() == "the user's data\n"
    assert not os.path.islink(job.path("output", "success"))


def test_a_dangling_failure_link_is_the_users_failure_file(job, tmp_path):
    target = tmp_path / "elsewhere"
    job.add_script("train.py", "import os, sys\n"
                   "os.symlink({!r}, os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'))\nsys.exit(4)\n"
                   .format(str(target)))
    job.entry("train.py")
    result = job.run()
    assert result.returncode == 4
    assert not target.exists()  # never written through the link


def test_a_failure_file_written_by_a_script_that_exits_0_fails_the_job(job):
    job.add_script("train.py", "import os\n"
                   "open(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w').write('bad data in batch 7\\n')\n")
    job.entry("train.py")
    result = job.run()
    assert result.returncode == 1
    assert result.failure == "bad data in batch 7\n"  # the script's own words are kept
    assert not result.succeeded
    assert "User script failed: train.py wrote output/failure and exited 0" in result.stderr


@pytest.mark.parametrize("code", [130, 137, 143])
def test_a_status_above_128_is_not_a_signal(job, code):
    job.add_script("train.py", "import sys\nsys.exit({})\n".format(code))
    job.entry("train.py")
    result = job.run()
    assert result.returncode == code
    assert result.failure_first_line == "User script failed: train.py exited with status {}".format(code)


@pytest.mark.parametrize("name,value", [
    ("MX_TRAINING_STOP_GRACE_SECONDS", "inf"),
    ("MX_TRAINING_STOP_GRACE_SECONDS", "-5"),
    ("MX_TRAINING_HOST_WAIT_SECONDS", "nan"),
    ("MX_TRAINING_PS_LINGER_SECONDS", "soon"),
])
def test_an_unusable_launcher_setting_is_a_configuration_error(job, name, value):
    job.add_script("train.py", "print('should not run')\n")
    job.entry("train.py")
    result = job.run(**{name: value})
    maximum = "604800" if name == "MX_TRAINING_HOST_WAIT_SECONDS" else "86400"
    assert result.returncode == 2
    assert result.failure_first_line == ("Configuration error: {}={!r}: expected a number of seconds between 0 "
                                         "and {}".format(name, value, maximum))
    assert "should not run" not in result.stdout


def test_unused_parameter_server_roles_do_not_hold_the_job(job):
    # The script trains without a dist kvstore: the scheduler and server wait for workers that
    # never come. Once the worker is done they get MX_TRAINING_PS_LINGER_SECONDS, not a minute.
    job.add_script("train.py", "print('trained locally', flush=True)\n")
    job.entry("train.py")
    job.hyperparameters["sagemaker_parameter_server_enabled"] = "true"
    job.hyperparameters["_ps_port"] = str(free_port())
    began = time.monotonic()
    result = job.run(MX_TRAINING_PS_LINGER_SECONDS="1")
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.succeeded
    assert "scheduler, server still running 1 s after every worker finished: stopping them" in result.stderr
    assert elapsed < 30  # was the 60 s linger, whatever the setting


def test_mx_train_stops_every_host_on_sighup(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text("import time\nprint('sleeper ready', flush=True)\ntime.sleep(120)\n")
    root = tmp_path / "root"
    proc = subprocess.Popen(MX_TRAIN + ["--hosts", "2", "--code", str(code), "--base-dir", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ready = 0
    while ready < 2:
        line = proc.stdout.readline()
        assert line, "mx-train ended early"
        ready += b"sleeper ready" in line
    proc.send_signal(signal.SIGHUP)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGHUP, out.decode()[-2000:]
    assert_no_process_left(str(root))

