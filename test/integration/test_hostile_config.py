"""Config and code that trip a careless launcher, through the real ``train`` command: a relative base
directory, config files that are FIFOs, hyperparameters nested past Python's recursion limit, names
that collide as environment variables, odd entry point names, a user module named like the
launcher's package, and processes of the launcher's own steps that cannot start."""

import os
import subprocess
import sys

import pytest

import mx_training_toolkit

from .support import TRAIN, free_port

EXIT_CONFIG, EXIT_PIP = 2, 4


def test_a_relative_base_dir_gives_the_script_absolute_paths(job, tmp_path):
    job.add_script("train.py", "import os\n"
                   "print('model dir:', os.environ['SM_MODEL_DIR'])\n"
                   "open(os.path.join(os.environ['SM_MODEL_DIR'], 'model.txt'), 'w').write('trained')\n")
    job.entry("train.py")
    job.write_config()
    # The launcher starts in the base directory's parent; the script runs in code/.
    done = subprocess.run(TRAIN, env=job.env(SAGEMAKER_BASE_DIR="ml"), cwd=str(tmp_path), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert "model dir: {}\n".format(job.path("model")) in done.stdout.decode()
    with open(job.path("model", "model.txt")) as f:
        assert f.read() == "trained"
    assert os.path.exists(job.path("output", "success"))


@pytest.mark.parametrize("name", ["hyperparameters.json", "resourceconfig.json", "inputdataconfig.json"])
def test_a_config_file_that_is_a_fifo_is_refused_at_once(job, name):
    job.add_script("train.py", "print('ran')\n")
    job.entry("train.py")
    job.write_config()
    path = job.path("input", "config", name)
    if os.path.exists(path):
        os.unlink(path)
    os.mkfifo(path)  # nobody ever writes to it: reading it would wait forever
    result = job.run(timeout=60, write=False)
    assert result.returncode == EXIT_CONFIG
    assert result.failure_first_line == \
        "Configuration error: {}: cannot read the file (it is a FIFO, not a regular file)".format(name)


DEEP = 900  # far past the 100 levels allowed, and parsed by json wherever the launcher decodes it (990 was
# parsed or not depending on a stack frame more or less)


def _write_raw(job, name, text):
    with open(job.path("input", "config", name), "w") as f:
        f.write(text)


@pytest.mark.parametrize("name, field, text", [
    # a value JSON-encoded into a string, the SDK's way
    ("hyperparameters.json", "deep",
     '{"sagemaker_program": "\\"train.py\\"", "deep": "' + "[" * DEEP + "]" * DEEP + '"}'),
    # the file itself nested deeply
    ("hyperparameters.json", "deep", '{"sagemaker_program": "train.py", "deep": ' + "[" * 900 + "]" * 900 + "}"),
    ("resourceconfig.json", "topology",
     '{"current_host": "algo-1", "hosts": ["algo-1"], "topology": ' + "[" * 900 + "]" * 900 + "}"),
], ids=["hyperparameter-string", "hyperparameters-file", "resourceconfig-file"])
def test_a_value_nested_too_deeply_is_a_configuration_error(job, name, field, text):
    job.add_script("train.py", "print('ran')\n")
    job.entry("train.py")
    job.write_config()
    _write_raw(job, name, text)
    result = job.run(write=False)
    assert result.returncode == EXIT_CONFIG
    assert result.failure_first_line == \
        "Configuration error: {}: field '{}' is nested more than 100 levels deep".format(name, field)


def test_channels_that_differ_only_in_case_are_a_configuration_error(job):
    job.add_script("train.py", "print('ran')\n")
    job.entry("train.py").channel("train").channel("TRAIN")
    result = job.run()
    assert result.returncode == EXIT_CONFIG
    assert result.failure_first_line == (
        "Configuration error: inputdataconfig.json: channels 'TRAIN' and 'train' both become the environment "
        "variable SM_CHANNEL_TRAIN; rename one")


def test_hyperparameters_that_differ_only_in_case_are_a_configuration_error(job):
    job.add_script("train.py", "print('ran')\n")
    job.entry("train.py", lr=0.1, LR=0.2)
    result = job.run()
    assert result.returncode == EXIT_CONFIG
    assert result.failure_first_line == (
        "Configuration error: hyperparameters.json: hyperparameters 'LR' and 'lr' both become the environment "
        "variable SM_HP_LR; rename one")


LEGACY = "def train(hyperparameters):\n    print('trained with', sorted(hyperparameters)[:1])\n"


@pytest.mark.parametrize("entry, file", [("./t.py", "t.py"), ("sub//t.py", "sub/t.py")])
def test_a_legacy_entry_point_spelled_with_a_dot_slash_or_in_a_directory_is_imported(job, entry, file):
    job.add_script(file, LEGACY)
    job.entry(entry)
    result = job.run()
    assert result.returncode == 0, result.stderr[-2000:]
    assert "trained with ['sagemaker_program']\n" in result.stdout


SHADOW = "raise SystemExit('the user module mx_training_toolkit.py was imported by the launcher')\n"


@pytest.mark.parametrize("mode", ["legacy", "parameter-server runner"])
def test_a_user_module_named_like_the_launchers_package_does_not_replace_its_runners(job, mode):

    job.add_script("mx_training_toolkit.py", SHADOW)
    if mode == "legacy":
        job.add_script("t.py", LEGACY)
        job.entry("t.py")
        expected = "trained with ['sagemaker_program']\n"
    else:
        job.add_script("t.py", "import sys\nprint('ran as', sys.argv)\n")
        job.entry("t.py", lr=0.1)
        job.hyperparameters["sagemaker_parameter_server_enabled"] = "true"
        job.hyperparameters["_ps_port"] = str(free_port())
        expected = "ran as ['t.py', '--lr', '0.1']\n"
    result = job.run(MX_TRAINING_PS_LINGER_SECONDS="0")
    assert result.returncode == 0, result.stderr[-2000:]
    assert expected in result.stdout


PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(mx_training_toolkit.__file__)))


def _run_with_a_python_that_is_gone(job, tmp_path, path=PACKAGE_PARENT):
    """Run ``train`` under an interpreter path that does not exist: the launcher itself runs (the
    real interpreter, told that it is that path, importing from ``path``), but nothing it starts
    with that path can."""
    gone = str(tmp_path / "gone" / "bin" / "python")
    env = job.env(PYTHONPATH=path)
    job.write_config()
    done = subprocess.run([gone, "-c", "from mx_training_toolkit.training import main; main()"],
                          executable=sys.executable, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, timeout=120)
    with open(job.path("output", "failure")) as f:
        first_line = f.readline().rstrip("\n")
    return done.returncode, first_line, gone


def test_pip_that_cannot_start_is_a_pip_failure(job, tmp_path):
    job.add_script("train.py", "print('ran')\n")
    job.add_script("requirements.txt", "\n")
    job.entry("train.py")
    status, first_line, gone = _run_with_a_python_that_is_gone(job, tmp_path)
    assert status == EXIT_PIP
    assert first_line == "pip install failed: cannot start {} in {}: No such file or directory".format(
        gone, job.code_dir)


def test_a_parameter_server_role_that_cannot_start_is_a_parameter_server_failure(job, tmp_path):

    job.add_script("train.py", "print('ran')\n")
    job.entry("train.py")
    job.hyperparameters["sagemaker_parameter_server_enabled"] = "true"
    job.hyperparameters["_ps_port"] = str(free_port())
    status, first_line, gone = _run_with_a_python_that_is_gone(job, tmp_path)
    assert status == 127  # as a shell says of a command it cannot find
    assert first_line == "Parameter server failed: cannot start {} in {}: No such file or directory".format(
        gone, job.code_dir)


def test_a_rendezvous_server_that_cannot_start_is_a_horovod_failure(job, tmp_path):
    import sysconfig

    job.add_script("train.py", "print('ran')\n")
    job.entry("train.py")
    job.hyperparameters["sagemaker_mpi_enabled"] = "true"
    job.hyperparameters["_ps_port"] = str(free_port())
    # The launcher finds Horovod where this interpreter does (it only looks for it; the ranks import it).
    status, first_line, gone = _run_with_a_python_that_is_gone(
        job, tmp_path, PACKAGE_PARENT + os.pathsep + sysconfig.get_paths()["purelib"])
    assert status == 127
    assert first_line == "Horovod rendezvous failed: cannot start {} in {}: No such file or directory".format(
        gone, job.code_dir)
