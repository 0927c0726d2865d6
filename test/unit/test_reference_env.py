"""Our SM_* variables, and the plain ones the reference sets (CURRENT_HOST, SAGEMAKER_JOB_NAME,
SAGEMAKER_REGION), against the reference's, recorded from sagemaker-training 5.1.4 with
sagemaker-mxnet-training 4.3.0 by test/resources/reference_env/record.py."""

import json
import os

import pytest

from mx_training_toolkit import config, environment, jobfiles

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resources", "reference_env")


def _fixture(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return json.load(f)


SCENARIOS = _fixture("scenarios.json")
ONE_HOST = _fixture("one_host_groups.json")
PLAIN = _fixture("plain_variables.json")


def _load(tmp_path, hyperparameters, resource_config, input_data_config, environ=None):
    """Write the job the way the platform does and load it -> ``JobConfig``."""
    base = tmp_path / "ml"
    for channel in input_data_config:
        (base / "input" / "data" / channel).mkdir(parents=True)
    paths = jobfiles.write_job(base, hyperparameters, resource_config, input_data_config)
    return config.load(paths.base, environ or {})


@pytest.mark.parametrize("name", sorted(SCENARIOS["cases"]))
def test_instance_group_variables_match_the_reference(tmp_path, name):
    case = SCENARIOS["cases"][name]
    cfg = _load(tmp_path, dict(case["hyperparameters"], sagemaker_program="train.py"), case["resource_config"],
                {"train": {}})
    ours = environment.TrainingEnv(cfg).to_env_vars()
    training = json.loads(ours["SM_TRAINING_ENV"])
    assert {k: training[k] for k in case["training_env"]} == case["training_env"]
    assert {k: ours[k] for k in case["variables"]} == case["variables"]
    # The reference exports SM_TOPOLOGY only when resourceconfig.json has a topology; so do we.
    assert ("SM_TOPOLOGY" in ours) == ("SM_TOPOLOGY" in case["variables"])


def test_a_one_host_job_with_instance_groups_exports_everything_the_reference_does(tmp_path):
    job = ONE_HOST["job"]
    cfg = _load(tmp_path, job["hyperparameters"], job["resource_config"], job["input_data_config"])
    reference = json.loads(json.dumps(job["environ"]).replace(ONE_HOST["base"], cfg.paths.base))
    # The host facts as the reference measured them on the machine that recorded the fixture.
    ours = environment.TrainingEnv(cfg, num_gpus=int(reference["SM_NUM_GPUS"]),
                                   num_cpus=int(reference["SM_NUM_CPUS"])).to_env_vars()
    ref_training = json.loads(reference.pop("SM_TRAINING_ENV"))
    our_training = json.loads(ours["SM_TRAINING_ENV"])
    # By design: the reference names its own framework module; we name ours.
    del reference["SM_FRAMEWORK_MODULE"], ref_training["framework_module"]
    assert {k: ours.get(k) for k in reference} == reference
    assert {k: our_training.get(k, "<missing>") for k in ref_training} == ref_training
    assert ref_training["is_master"] is True and reference["SM_IS_HETERO"] == "false"


@pytest.mark.parametrize("name", sorted(PLAIN["cases"]))
def test_the_plain_variables_and_the_job_name_match_the_reference(tmp_path, name):
    case = PLAIN["cases"][name]
    cfg = _load(tmp_path, dict(case["hyperparameters"], sagemaker_program="train.py"), case["resource_config"],
                {"train": {}}, case["environ"])
    ours = environment.TrainingEnv(cfg).to_env_vars()
    assert {k: ours[k] for k in case["variables"]} == case["variables"]
    job_name = json.loads(ours["SM_TRAINING_ENV"])["job_name"]
    if "TRAINING_JOB_NAME" in case["environ"]:
        assert job_name == case["job_name"]
    else:  # by design: without the platform's variable, the hyperparameter (the reference: null)
        assert job_name == case["hyperparameters"].get("sagemaker_job_name")
