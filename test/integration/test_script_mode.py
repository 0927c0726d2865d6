"""The ``train`` command running script-mode jobs: real processes, real signals."""

import json
import os
import signal
import time

import pytest

from .support import pid_alive, snapshot


def test_success_writes_success_file_and_streams_output(job):
    job.add_script("train.py", resource="exit_with.py")
    job.entry("train.py", code=0)
    result = job.run()
    assert result.returncode == 0, result.stderr
    assert result.succeeded
    assert result.failure is None
    assert "exit_with: starting" in result.stdout
    assert "exit_with: done" in result.stdout


def test_failing_script_exit_code_and_traceback_in_failure_file(job):
    job.add_script("train.py", resource="exit_with.py")
    job.entry("train.py", code=3)
    result = job.run()
    assert result.returncode == 3
    assert not result.succeeded
    assert result.failure_first_line == "User script failed: train.py exited with status 3"
    assert "Traceback (most recent call last)" in result.failure
    assert "RuntimeError: the data is missing (code 3)" in result.failure


@pytest.mark.parametrize("sig,status,words", [
    ("SIGKILL", 137, "was killed by SIGKILL (exit status 137); probably out of memory"),
    ("SIGSEGV", 139, "was killed by SIGSEGV (exit status 139)"),
])
def test_death_by_signal_gives_128_plus_n(job, sig, status, words):
    job.add_script("train.py", resource="killed_by_signal.py")
    job.entry("train.py", signal=sig)
    result = job.run()
    assert result.returncode == status
    assert result.failure_first_line == "User script failed: train.py " + words


def test_user_written_failure_file_is_kept(job):
    job.add_script("train.py", "import os, sys\n"
                   "open(os.path.join(os.environ['SM_OUTPUT_DIR'], 'failure'), 'w').write('my own reason\\n')\n"
                   "sys.exit(5)\n")
    job.entry("train.py")
    result = job.run()
    assert result.returncode == 5
    assert result.failure == "my own reason\n"


def test_environment_and_arguments_given_to_the_script(job):
    job.add_script("train.py", resource="print_env.py")
    job.entry("train.py", epochs=10, lr=0.5, use_bn=True, layers=[1, "a"], opts={"a": 1}, b="x")
    job.hyperparameters["sagemaker_parameter_server_enabled"] = "false"
    job.channel("train").channel("eval")
    job.resource_config = {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "ethX"}
    result = job.run(CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 0, result.stderr
    with open(job.path("output", "data", "env.json")) as f:
        data = json.load(f)
    assert data["argv"] == ["-b", "x", "--epochs", "10", "--layers", "[1, 'a']", "--lr", "0.5",
                            "--opts", "a=1", "--use_bn", "True"]
    env = data["env"]
    assert data["cwd"] == job.code_dir
    assert env["PYTHONPATH"].split(os.pathsep)[0] == job.code_dir
    assert env["SM_HOSTS"] == '["algo-1"]'
    assert env["SM_CURRENT_HOST"] == "algo-1"
    assert env["SM_CHANNELS"] == '["eval","train"]'
    assert env["SM_CHANNEL_TRAIN"] == job.path("input", "data", "train")
    assert env["SM_HP_EPOCHS"] == "10"
    assert env["SM_HP_USE_BN"] == "true"
    assert env["SM_HP_B"] == "x"
    assert env["SM_MODEL_DIR"] == job.path("model")
    assert env["SM_OUTPUT_DATA_DIR"] == job.path("output", "data")
    assert env["SM_NUM_GPUS"] == "0"
    assert int(env["SM_NUM_CPUS"]) == len(os.sched_getaffinity(0))
    assert env["SM_NETWORK_INTERFACE_NAME"] == "ethX"
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "local"
    assert env["SM_USER_ENTRY_POINT"] == "train.py"
    assert env["SM_MODULE_NAME"] == "train"
    assert json.loads(env["SM_FRAMEWORK_PARAMS"]) == {"sagemaker_parameter_server_enabled": False}
    assert json.loads(env["SM_HPS"])["layers"] == [1, "a"]
    assert json.loads(env["SM_USER_ARGS"]) == data["argv"]
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["hosts"] == ["algo-1"]
    assert training_env["channel_input_dirs"]["eval"] == job.path("input", "data", "eval")
    assert "sagemaker_program" not in training_env["hyperparameters"]


def test_sigterm_reaches_the_scripts_handler(job):
    job.add_script("train.py", resource="trap_sigterm.py")
    job.entry("train.py")
    proc = job.start()
    assert proc.stdout.readline().startswith(b"trap_sigterm: ready")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 7, err.decode()
    assert os.path.exists(job.path("output", "data", "got-sigterm"))
    assert b"got SIGTERM" in out
    with open(job.path("output", "failure")) as f:
        assert f.readline() == ("Job stopped: the launcher received SIGTERM before the job finished; "
                                "train.py exited with status 7\n")


def _sigterm_when_ready(job, ready, grace):
    """Start the job, SIGTERM the launcher once the script printed ``ready`` -> (proc, seconds to exit)."""
    proc = job.start(MX_TRAINING_STOP_GRACE_SECONDS=grace)
    assert proc.stdout.readline().startswith(ready)
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    return proc, time.monotonic() - began


def test_sigterm_ignored_by_script_is_followed_by_sigkill(job):
    job.add_script("train.py", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                   "print('stubborn', flush=True)\ntime.sleep(60)\n")
    job.entry("train.py")
    proc, elapsed = _sigterm_when_ready(job, b"stubborn", grace="1")
    assert proc.returncode == 143  # the launcher's own stop, not the script's death: not "out of memory"
    assert elapsed < 10
    with open(job.path("output", "failure")) as f:
        assert f.readline() == ("Job stopped: the launcher received SIGTERM before the job finished; "
                                "train.py did not stop within 1 s and was killed\n")


def test_orphaned_grandchild_does_not_outlive_the_launcher(job):
    job.add_script("train.py", resource="grandchild.py")
    job.entry("train.py")
    result = job.run()
    assert result.returncode == 0, result.stderr
    with open(job.path("output", "data", "grandchild.pid")) as f:
        pid = int(f.read())
    assert not pid_alive(pid)


def test_grandchild_killed_when_the_launcher_is_stopped(job):
    job.add_script("train.py", resource="grandchild.py")
    job.entry("train.py")
    job.hyperparameters["wait"] = '""'
    proc = job.start()
    assert proc.stdout.readline().startswith(b"grandchild: started")
    with open(job.path("output", "data", "grandchild.pid")) as f:
        pid = int(f.read())
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGINT
    assert not pid_alive(pid)


def test_chatty_script_is_never_blocked(job):
    job.add_script("train.py", resource="chatty.py")
    job.entry("train.py")
    result = job.run(timeout=60)
    assert result.returncode == 0
    assert result.stdout.count("out line") == 20000
    assert result.stderr.count("err line") == 20000


def test_shell_entry_point_executed_directly(job):
    job.add_script("train.sh", "#!/bin/sh\necho \"args: $@\"\nexit 4\n")
    job.entry("train.sh", epochs=2)
    result = job.run()
    assert result.returncode == 4
    assert "args: --epochs 2" in result.stdout


def test_secrets_are_masked_in_the_log(job):
    job.add_script("train.py", "import sys\nprint(sys.argv[1:])\n")
    job.entry("train.py", db_password="hunter2", api_token="t0k3n", epochs=1)
    job.hyperparameters["sagemaker_container_log_level"] = "10"  # the whole environment too
    result = job.run()
    assert result.returncode == 0
    assert "hunter2" not in result.stderr and "t0k3n" not in result.stderr  # every line of the launcher's log
    assert [line.split(" run: ", 1)[1].split(" ", 1)[1] for line in result.stderr.splitlines() if " run: " in line] == \
        ["-m mx_training_toolkit.runner train.py --api_token ******** --db_password ******** --epochs 1"]
    assert '"db_password": "********"' in result.stderr
    # The script's own output is copied as it is.
    assert "['--api_token', 't0k3n', '--db_password', 'hunter2', '--epochs', '1']" in result.stdout


def test_model_dir_untouched_by_a_failing_job(job):
    os.makedirs(job.path("model"))
    with open(job.path("model", "keep.txt"), "w") as f:
        f.write("mine")
    job.add_script("train.py", resource="exit_with.py")
    job.entry("train.py", code=2)
    before = snapshot(job.path("model"))
    result = job.run()
    assert result.returncode == 2
    assert snapshot(job.path("model")) == before


def test_entry_point_that_cannot_start_is_a_user_script_failure(job):
    job.add_script("train.sh", "#!/no/such/interpreter\necho never\n")
    job.entry("train.sh")
    result = job.run()
    assert (result.returncode, result.failure_first_line) == (
        127, "User script failed: cannot start ./train.sh in {}: No such file or directory".format(job.code_dir))
    assert "Traceback" not in result.stderr


def test_two_signals_at_once_still_stop_the_job_cleanly(job):
    job.add_script("train.py", resource="trap_sigterm.py")
    job.entry("train.py")
    for _ in range(3):
        proc = job.start()
        assert proc.stdout.readline().startswith(b"trap_sigterm: ready")
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        # Both arrive pending; the kernel delivers the lower-numbered SIGINT first. The first one
        # received decides, and is forwarded to the script (whose SIGTERM handler exits 7).
        with open(job.path("output", "failure")) as f:
            first = f.readline().rstrip("\n")
        assert (proc.returncode, first) in [
            (130, "Job stopped: the launcher received SIGINT before the job finished; train.py was killed by SIGINT "
                  "(exit status 130)"),
            (7, "Job stopped: the launcher received SIGTERM before the job finished; train.py exited with status 7"),
        ], err.decode()[-2000:]


def test_stop_does_not_wait_for_a_daemon_of_a_stubborn_script(job):
    # The script ignores SIGTERM and has started a daemon in a session of its own, which only
    # becomes our orphan once the script is SIGKILLed: the launcher must kill it too, not wait for it.
    job.add_script("train.py", "import os, signal, subprocess, sys, time\n"
                   "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                   "p = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
                   "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'], start_new_session=True)\n"
                   "open(os.path.join(os.environ['SM_OUTPUT_DATA_DIR'], 'daemon.pid'), 'w').write(str(p.pid))\n"
                   "print('started', flush=True)\ntime.sleep(60)\n")
    job.entry("train.py")
    _proc, elapsed = _sigterm_when_ready(job, b"started", grace="1")
    assert elapsed < 8
    with open(job.path("output", "data", "daemon.pid")) as f:
        assert not pid_alive(int(f.read()))


def test_a_model_path_that_is_a_file_is_a_clear_configuration_error(job):
    job.add_script("train.py", "print('never')\n")
    job.entry("train.py")
    with open(job.path("model"), "w") as f:
        f.write("not a directory")
    result = job.run()
    assert (result.returncode, result.failure_first_line) == (
        2, "Configuration error: cannot create the directory {} (File exists); the base directory {} is not laid "
           "out as a training job's".format(job.path("model"), job.base))
    assert "Traceback" not in result.stderr
    with open(job.path("model")) as f:
        assert f.read() == "not a directory"


SCRIPT_AS_MAIN = '''# -*- coding: latin-1 -*-
"""doc of the script"""
import multiprocessing, os, pickle, sys


class Point:
    pass


def square(x):
    return x * x


if __name__ == "__main__":
    main = sys.modules["__main__"]
    print("name", __name__, "main-is-me", main.__dict__ is globals(), "doc", __doc__)
    print("file", __file__ == os.path.abspath("train.py"), "argv0", sys.argv[0], "path0", sys.path[0] == os.getcwd(),
          "spec", __spec__)
    print("pickled", type(pickle.loads(pickle.dumps(Point()))).__name__, "cookie", "\xe9" == "\\xe9")
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        print("spawn", pool.map(square, [3]))
'''


def test_a_script_runs_as_main_as_under_python(job):
    """Python scripts run through the launcher's runner (it records the error that ends them):
    what a script sees of itself is what ``python train.py`` shows it."""
    with open(job.add_script("train.py", ""), "wb") as f:
        f.write(SCRIPT_AS_MAIN.encode("latin-1"))
    job.entry("train.py")
    result = job.run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[-4:] == [
        "name __main__ main-is-me True doc doc of the script",
        "file True argv0 train.py path0 True spec None",
        "pickled Point cookie True",
        "spawn [9]"]
