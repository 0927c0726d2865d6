import json

import pytest

from mx_training_toolkit import config, environment


@pytest.mark.parametrize("visible,physical,expected", [
    (None, 0, 0),
    ("0,1", 0, 0),  # no driver: no GPUs, whatever the variable says
    (None, 4, 4),
    ("", 4, 0),
    ("-1", 4, 0),
    ("0", 4, 1),
    ("0,2", 4, 2),
    ("0,1,2,3,4,5", 4, 4),
    ("1,7,2", 4, 1),  # CUDA stops at the first invalid ordinal
    ("GPU-3f2a,GPU-88aa", 4, 2),
    (" 0 , 1 ", 2, 2),
])
def test_count_gpus(visible, physical, expected):
    assert environment.count_gpus(visible, physical) == expected


@pytest.mark.parametrize("affinity,cpu_max,quota,period,expected", [
    (8, None, None, None, 8),
    (8, "max 100000", None, None, 8),
    (8, "200000 100000", None, None, 2),
    (8, "150000 100000", None, None, 2),  # 1.5 CPUs rounds up
    (2, "800000 100000", None, None, 2),  # affinity is the tighter limit
    (8, None, "-1", "100000", 8),
    (8, None, "300000", "100000", 3),
    (4, "garbage", None, None, 4),
    (1, "1000 100000", None, None, 1),  # never below one
])
def test_count_cpus(affinity, cpu_max, quota, period, expected):
    assert environment.count_cpus(affinity, cpu_max, quota, period) == expected


def _config(tmp_path, hps, resource=None):
    """A job with the channel ``train``; ``hps`` as the files hold them (already JSON-encoded)."""
    base = tmp_path / "ml"
    (base / "input" / "data" / "train").mkdir(parents=True)
    paths = config.write_job(base, hps, resource, {"train": {}}, encode=False)
    return config.load(paths.base, {})


def test_env_vars_formats(tmp_path):
    cfg = _config(tmp_path, {"sagemaker_program": '"t.py"', "learning-rate": "0.1", "flag": "true",
                             "sagemaker_parameter_server_enabled": "true", "name": "raw string"},
                  {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]})
    env = environment.TrainingEnv(cfg, num_gpus=2, num_cpus=4).to_env_vars()
    assert env["SM_HP_LEARNING-RATE"] == "0.1"
    assert env["SM_HP_FLAG"] == "true"
    assert env["SM_HP_NAME"] == "raw string"
    assert env["SM_HOSTS"] == '["algo-1","algo-2"]'
    assert env["SM_NUM_GPUS"] == "2" and env["SM_NUM_CPUS"] == "4"
    assert env["SM_FRAMEWORK_PARAMS"] == '{"sagemaker_parameter_server_enabled":true}'
    assert env["SM_HPS"] == '{"flag":true,"learning-rate":0.1,"name":"raw string"}'
    assert env["SM_USER_ARGS"] == '["--flag","True","--learning-rate","0.1","--name","raw string"]'
    assert env["SM_MODULE_NAME"] == "t"
    assert env["SM_CHANNEL_TRAIN"].endswith("/input/data/train")
    assert env["PYTHONPATH"] == cfg.paths.code_dir
    training = json.loads(env["SM_TRAINING_ENV"])
    assert training["current_host"] == "algo-2"
    assert training["master_hostname"] == "algo-1"
    assert training["num_gpus"] == 2


def test_log_summary_masks_secrets(tmp_path):
    cfg = _config(tmp_path, {"sagemaker_program": '"t.py"', "aws_secret_access_key": '"s3cr3t"',
                             "MyPassword": '"pw"', "epochs": "2"})
    text = environment.TrainingEnv(cfg, 0, 1).log_summary()
    assert "s3cr3t" not in text and '"pw"' not in text
    assert '"epochs": 2' in text


def test_with_pythonpath_keeps_image_path_after_code():
    out = environment.with_pythonpath({"PYTHONPATH": "/opt/ml/code"}, "/usr/lib/extra")
    assert out["PYTHONPATH"] == "/opt/ml/code:/usr/lib/extra"


def test_training_env_from_a_config_built_in_one_line():
    cfg = config.JobConfig(paths=config.Paths("/tmp/x"), hosts=("algo-1", "algo-2"), current_host="algo-2",
                           user_hyperparameters={"epochs": 3})
    env = environment.TrainingEnv(cfg)
    assert (env.num_gpus, env.num_cpus) == (0, 1)
    out = env.to_env_vars()
    assert out["SM_HOSTS"] == '["algo-1","algo-2"]' and out["SM_CURRENT_HOST"] == "algo-2"
    assert out["SM_USER_ARGS"] == '["--epochs","3"]' and out["SM_MODEL_DIR"] == "/tmp/x/model"
    assert environment.TrainingEnv._fields == ("config", "num_gpus", "num_cpus")
    with pytest.raises(AttributeError):
        env.num_gpus = 2
