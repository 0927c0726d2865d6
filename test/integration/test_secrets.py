"""Secret hyperparameters through the real ``train``: masked in everything the launcher writes
(its log, the failure file), never in the script's own output."""

import json

# Secret-looking names, nested ones and a secret's own dict included; the values are unique words.
SECRETS = {"db": {"password": "hunter22", "host": "db.local"}, "Client-Passphrase": "open sesame",
           "auth": {"user": "bob-the-user", "pw": "pw-in-auth"}, "request_signature": "sig-4711"}
SECRET_WORDS = ("hunter22", "open sesame", "bob-the-user", "pw-in-auth", "sig-4711")


def launcher_lines(stderr):
    """The launcher's own log lines: ``DATE TIME LEVEL mx_training_toolkit...: message``."""
    return [line for line in stderr.splitlines()
            if len(line.split()) > 3 and line.split()[3].startswith("mx_training_toolkit")]


def test_rejected_arguments_are_masked_in_the_failure_file_not_in_the_scripts_output(job):
    job.add_script("train.py", "import argparse\np = argparse.ArgumentParser()\np.add_argument('--epochs')\n"
                   "p.parse_args()\n")
    job.entry("train.py", api_token="t0k3n", epochs=1)
    result = job.run()
    assert result.returncode == 2
    assert result.failure_first_line == "User script failed: train.py exited with status 2"
    assert "t0k3n" not in result.failure
    assert "error: unrecognized arguments: --api_token ********\n" in result.failure
    # The script's own stderr goes to the log as it wrote it; the launcher's lines are masked.
    assert "train.py: error: unrecognized arguments: --api_token t0k3n\n" in result.stderr
    assert not [line for line in launcher_lines(result.stderr) if "t0k3n" in line]


def test_a_secret_cut_by_the_end_of_a_long_stderr_line_is_masked_in_the_failure_file(job):
    # The failure file keeps the first 4000 bytes of a stderr line: this one ends inside the token.
    job.add_script("train.py", "import sys\nsys.stderr.write('x' * 3990 + ' ' + sys.argv[2] + '\\n')\nsys.exit(1)\n")
    job.entry("train.py", api_token="t0k3n-0123456789")
    result = job.run()
    assert result.returncode == 1
    assert result.failure_first_line == "User script failed: train.py exited with status 1"
    assert result.failure.splitlines()[3] == "x" * 3990 + " ********"
    assert "t0k3n-0123456789\n" in result.stderr  # the script's own line, as it wrote it


def test_nested_and_listed_secret_names_are_masked_in_the_run_line_and_the_full_environment(job):
    job.add_script("train.py", "print('script ran')\n")
    job.entry("train.py", epochs=1, **SECRETS)
    job.hyperparameters["sagemaker_container_log_level"] = "10"
    result = job.run()
    assert result.returncode == 0, result.stderr
    lines = launcher_lines(result.stderr)
    assert lines and not [line for line in lines for word in SECRET_WORDS if word in line]
    run = [line for line in lines if " run: " in line]
    assert run[0].endswith("train.py --Client-Passphrase ******** --auth ******** --db host=db.local,"
                           "password=******** --epochs 1 --request_signature ********")
    details = [line for line in lines if " DEBUG mx_training_toolkit: environment (all of it): " in line]
    env = json.loads(details[0].split("environment (all of it): ", 1)[1])
    assert env["hyperparameters"] == {"Client-Passphrase": "********", "auth": "********",
                                      "db": {"host": "db.local", "password": "********"}, "epochs": 1,
                                      "request_signature": "********"}


def test_the_environment_line_at_info_is_short(job):
    job.add_script("train.py", "print('script ran')\n")
    job.entry("train.py", epochs=1, **SECRETS)
    job.channel("train")
    result = job.run(CUDA_VISIBLE_DEVICES="")
    assert result.returncode == 0, result.stderr
    lines = [line.split(": ", 1)[1] for line in launcher_lines(result.stderr) if " environment" in line]
    assert len(lines) == 1 and len(lines[0]) < 200
    assert lines[0].startswith("environment: algo-1 of 1 host (algo-1); channels: train; 0 GPUs, ")
    assert lines[0].endswith("; entry point train.py; 5 hyperparameters (the whole environment is logged at level 10)")
