"""Instance groups (heterogeneous clusters) as ``train`` reads them from the platform's files."""

import json

from mx_training_toolkit.jobfiles import group_resource_config

GROUPS = {"train1": ["algo-1", "algo-2"], "train2": ["algo-3"]}


def test_naming_a_group_the_cluster_lacks_is_a_configuration_error(job):
    job.add_script("train.py", "print('never runs')\n")
    job.entry("train.py")
    job.hyperparameters["sagemaker_parameter_server_enabled"] = "true"
    job.hyperparameters["sagemaker_distribution_instance_groups"] = json.dumps(["train3"])
    job.resource_config = group_resource_config("algo-1", GROUPS)
    result = job.run(timeout=60)
    assert result.returncode == 2
    assert result.failure_first_line == (
        "Configuration error: hyperparameters.json: field 'sagemaker_distribution_instance_groups' names instance "
        "group 'train3', which resourceconfig.json does not list (it lists train1, train2)")
    assert "never runs" not in result.stdout


def test_a_script_reads_its_group_from_sm_training_env(job):
    job.add_script("train.py", "import json, os\n"
                               "env = json.loads(os.environ['SM_TRAINING_ENV'])\n"
                               "print('is_master', env['is_master'], os.environ['SM_CURRENT_INSTANCE_GROUP'],\n"
                               "      os.environ['SM_INSTANCE_GROUPS'], env['distribution_hosts'])\n")
    job.entry("train.py")
    job.resource_config = group_resource_config("algo-1", {"train1": ["algo-1"]})
    result = job.run(timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "is_master True train1 [\"train1\"] []" in result.stdout
