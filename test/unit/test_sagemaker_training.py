"""sagemaker_training.environment: the reference's import line, this toolkit's values."""

import os
import subprocess
import sys

from mx_training_toolkit import environment as ours, jobfiles

from sagemaker_training import environment


def test_environment_reads_the_job_with_the_launchers_own_values(tmp_path):
    base = tmp_path / "ml"
    jobfiles.write_job(str(base), {"sagemaker_program": "train.py", "lr": 0.5},
                     jobfiles.group_resource_config("algo-2", {"train": ["algo-1"], "eval": ["algo-2", "algo-3"]}),
                     {"training": {"TrainingInputMode": "File"}})
    (base / "input" / "data" / "training").mkdir(parents=True)
    env = environment.Environment({"SAGEMAKER_BASE_DIR": str(base)})
    assert env.hosts == ["algo-1", "algo-2", "algo-3"] == env["hosts"]
    assert env.current_host == "algo-2"
    assert env.current_instance_group == "eval"
    assert env.current_instance_group_hosts == ["algo-2", "algo-3"]
    assert env.instance_groups == ["train", "eval"]
    assert env.instance_groups_dict["eval"]["hosts"] == ["algo-2", "algo-3"]
    assert env.is_hetero is True
    assert env.channel_input_dirs == {"training": str(base / "input" / "data" / "training")}
    assert env.hyperparameters == {"lr": 0.5}
    assert env.to_cmd_args() == ["--lr", "0.5"]
    assert env.model_dir == str(base / "model")
    assert env.output_data_dir == str(base / "output" / "data")
    assert env.num_cpus == ours.usable_cpus() == environment.num_cpus()
    assert env.num_gpus == environment.num_gpus()
    assert env.to_env_vars()["SM_CURRENT_INSTANCE_GROUP"] == "eval"
    assert "hosts" in env.properties() and "hosts" in env


def test_importing_it_creates_nothing_and_imports_nothing_heavy(tmp_path):
    code = ("import sys; from sagemaker_training import environment; "
            "print(sorted(m for m in ('mxnet', 'numpy', 'boto3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, check=True, cwd=str(tmp_path),
                         env={**os.environ, "SAGEMAKER_BASE_DIR": str(tmp_path / "ml")}).stdout.decode()
    assert out.strip() == "[]"
    assert os.listdir(str(tmp_path)) == []
