"""The ``train`` command's own arguments: the platform gives none, an ``ENTRYPOINT ["train"]`` image
gives ``train``; ``--help`` says what it does; anything else is a usage error, not a job."""

import os
import subprocess

from .conftest import TRAIN


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
    with open(job.path("output", "failure")) as f:
        first = f.readline().rstrip("\n")
    assert (proc.returncode, first) == (
        2, "Configuration error: train takes no arguments (see train --help), got '--epochs 3'")
    assert not os.path.exists(job.path("code", "ran"))
