"""Hyperparameters too big for Linux's limits on a new process's environment, through the real
``train``: the job runs without the variables that cannot be passed, and says which."""

import json
import resource
import subprocess

from .support import TRAIN

# Prints what the script got: its arguments, and which copies of the hyperparameters are set.
REPORT = ("import json, os, sys\n"
          "names = sorted(k for k in os.environ if k in ('SM_HPS', 'SM_USER_ARGS', 'SM_TRAINING_ENV') "
          "or k.startswith('SM_HP_'))\n"
          "print('REPORT ' + json.dumps({'argv': sys.argv[1:], 'env': names}))\n")


def report(result):
    return json.loads(result.stdout.split("REPORT ", 1)[1].splitlines()[0])


def left_out(stderr):
    return [line.split(": environment: ", 1)[1].split(" left out")[0] for line in stderr.splitlines()
            if " WARNING mx_training_toolkit.environment: environment: " in line and " left out: " in line]


def test_a_45_kb_hyperparameter(job):
    job.add_script("train.py", REPORT)
    job.entry("train.py", big="x" * 45000, epochs=2)
    result = job.run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.succeeded
    assert report(result)["argv"] == ["--big", "x" * 45000, "--epochs", "2"]
    assert report(result)["env"] == ["SM_HPS", "SM_HP_BIG", "SM_HP_EPOCHS", "SM_USER_ARGS"]
    assert left_out(result.stderr) == ["SM_TRAINING_ENV"]
    assert "x" * 201 not in result.stderr  # the run line shows the start of the value only


def test_the_platforms_maximum_100_values_of_2500_characters(job):
    job.add_script("train.py", REPORT)
    values = {"hp{:03d}".format(i): chr(ord("a") + i % 26) * 2500 for i in range(100)}
    job.entry("train.py", **values)
    result = job.run()
    assert result.returncode == 0, result.stderr[-3000:]
    got = report(result)
    assert got["argv"] == [item for name in sorted(values) for item in ("--" + name, values[name])]
    assert got["env"] == ["SM_HP_" + name.upper() for name in sorted(values)]
    assert left_out(result.stderr) == ["SM_HPS", "SM_TRAINING_ENV", "SM_USER_ARGS"]


def test_a_small_stack_limit_leaves_out_the_largest_variables_too(job):
    job.add_script("train.py", REPORT)
    values = {"hp{:03d}".format(i): "v" * (2500 - i) for i in range(100)}  # hp000 is the largest
    job.entry("train.py", **values)
    job.write_config()
    env = job.env()
    # Linux gives arguments and environment a quarter of the stack limit: make that the arguments,
    # the inherited environment, the launcher's reserve and 100 KB, room for about 40 SM_HP_* of 2.5 KB.
    needed = sum(len(name) + len(value) + 20 for name, value in values.items())
    needed += sum(len(name) + len(value) + 10 for name, value in env.items()) + 16384 + 100000
    stack = 4 * needed

    def small_stack():
        resource.setrlimit(resource.RLIMIT_STACK, (stack, resource.getrlimit(resource.RLIMIT_STACK)[1]))

    proc = subprocess.run(TRAIN, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                          stdin=subprocess.DEVNULL, preexec_fn=small_stack)
    stdout, stderr = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 0, stderr[-3000:]
    got = json.loads(stdout.split("REPORT ", 1)[1].splitlines()[0])
    assert len(got["argv"]) == 200
    missing = left_out(stderr)
    assert missing[:3] == ["SM_HPS", "SM_TRAINING_ENV", "SM_USER_ARGS"]
    dropped = ["SM_HP_HP{:03d}".format(i) for i in range(len(missing) - 3)]  # the largest first
    assert 40 < len(dropped) < 80 and missing[3:] == dropped
    assert got["env"] == ["SM_HP_HP{:03d}".format(i) for i in range(len(dropped), 100)]


def test_one_argument_over_the_limit_is_a_configuration_error(job):
    job.add_script("train.py", REPORT)
    job.entry("train.py", epochs=2, huge="y" * 140000)
    result = job.run()
    assert result.returncode == 2
    assert result.failure_first_line == (
        "Configuration error: hyperparameters.json: field 'huge' is 140001 bytes as a command-line argument, over "
        "Linux's limit of 131072 for one argument (its closing NUL included); pass such data in a channel or a file "
        "with the code instead")
    assert "REPORT" not in result.stdout


def test_a_legacy_job_without_room_for_sm_training_env_still_gets_its_arguments(job):
    # SM_TRAINING_ENV is left out: the legacy runner rebuilds the job's description from its files.
    job.add_script("train.py", "def train(hyperparameters, hosts, channel_input_dirs):\n"
                   "    print('LEGACY', len(hyperparameters['big']), hosts, sorted(channel_input_dirs))\n")
    job.entry("train.py", big="y" * 45000)
    job.channel("training")
    result = job.run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert left_out(result.stderr) == ["SM_TRAINING_ENV"]
    assert "LEGACY 45000 ['algo-1'] ['training']\n" in result.stdout
