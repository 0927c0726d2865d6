"""Legacy-mode jobs through the real ``train`` command."""

import json
import os

import pytest

from .support import RESOURCES

LEGACY = os.path.join(RESOURCES, "legacy")


def legacy_job(job, script, **hps):
    with open(os.path.join(LEGACY, script)) as f:
        job.add_script("train.py", f.read())
    job.entry("train.py", **hps)
    job.channel("train")
    return job


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_module_returned_by_train_is_saved_by_the_default_serializer(job):
    result = legacy_job(job, "module_train.py", epochs=1, learning_rate=0.1).run()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mode: legacy train()/save()" in result.stderr
    assert sorted(os.listdir(job.path("model"))) == ["model-0000.params", "model-shapes.json", "model-symbol.json"]
    with open(job.path("model", "model-shapes.json")) as f:
        shapes = json.load(f)
    assert shapes and all(set(s) == {"name", "shape"} for s in shapes)


def test_missing_parameter_is_named_in_the_failure_file(job):
    result = legacy_job(job, "needs_foo.py").run()
    assert result.returncode == 1
    first = result.failure_first_line
    assert first.startswith("User script failed: train.py exited with status 1: train() in train.py requires")
    assert "'foo'" in first
    assert os.listdir(job.path("model")) == []


def test_legacy_forced_off_runs_the_file_as_a_script(job):
    job.add_script("train.py", "def train(**kwargs):\n    raise SystemExit(9)\nprint('ran as a script')\n")
    job.entry("train.py")
    job.hyperparameters["sagemaker_mxnet_legacy_mode"] = "false"
    result = job.run()
    assert result.returncode == 0
    assert "ran as a script" in result.stdout


def test_requirements_installed_in_legacy_mode_too(job):
    job.add_script("train.py", "def train(**kwargs):\n    import tinypkg_legacy\n    print(tinypkg_legacy.VALUE)\n")
    job.add_script("requirements.txt", "./nonexistent-local-package\n")
    job.entry("train.py")
    result = job.run(PIP_NO_INDEX="1")  # no package index is asked (nor probed)
    assert result.returncode == 4
    assert result.failure_first_line.startswith("pip install failed:")
