import io
import json

import pytest

from mx_training_toolkit import config, environment, jobfiles, log
from mx_training_toolkit.errors import ConfigError


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
    paths = jobfiles.write_job(base, hps, resource, {"train": {}}, encode=False)
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


def test_log_summary_is_one_short_line_without_hyperparameter_values(tmp_path):
    cfg = _config(tmp_path, {"sagemaker_program": '"t.py"', "db_password": '"s3cr3t"', "epochs": "2"},
                  {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]})
    assert environment.TrainingEnv(cfg, 0, 8).log_summary() == (
        "algo-2 of 2 hosts (algo-1, algo-2); channels: train; 0 GPUs, 8 CPUs; entry point t.py; "
        "2 hyperparameters (the whole environment is logged at level 10)")


def test_log_details_masks_secrets_at_any_depth(tmp_path):
    cfg = _config(tmp_path, {"sagemaker_program": '"t.py"', "aws_secret_access_key": '"s3cr3t"',
                             "MyPassword": '"pw"', "db": '{"passphrase": "open sesame", "host": "h"}', "epochs": "2"})
    text = environment.TrainingEnv(cfg, 0, 1).log_details()
    assert "s3cr3t" not in text and '"pw"' not in text and "sesame" not in text
    details = json.loads(text)
    assert details["hyperparameters"]["db"] == {"passphrase": "********", "host": "h"}
    assert details["user_args"][:2] == ["--MyPassword", "********"]
    assert '"epochs": 2' in text


@pytest.fixture
def warnings():
    out = io.StringIO()
    log.set_stream(out)
    yield out
    log.set_stream(None)


def _left_out(stream):
    return [line.split(": ", 2)[2] for line in stream.getvalue().splitlines() if "left out" in line]


def test_variables_over_the_limit_for_one_string_are_left_out(tmp_path, warnings):
    cfg = _config(tmp_path, {"sagemaker_program": '"t.py"', "big": json.dumps("x" * 45000), "epochs": "2"})
    out = environment.TrainingEnv(cfg, 0, 1).to_env_vars()
    assert "SM_TRAINING_ENV" not in out  # hyperparameters, all_hyperparameters and user_args: 135 KB
    assert json.loads(out["SM_HPS"])["big"] == "x" * 45000 and out["SM_HP_BIG"] == "x" * 45000
    size = len("SM_TRAINING_ENV=") + len(json.dumps(environment.TrainingEnv(cfg, 0, 1).training_env(),
                                                    sort_keys=True, separators=(",", ":"))) + 1
    assert _left_out(warnings) == [
        "SM_TRAINING_ENV left out: {} bytes, over Linux's limit of 131072 for one variable; the script still gets "
        "its arguments and can read input/config/hyperparameters.json".format(size)]


def test_the_largest_copies_of_the_hyperparameters_go_first_when_the_total_is_short(tmp_path, warnings):
    cfg = _config(tmp_path, {"sagemaker_program": '"t.py"', "a": json.dumps("a" * 20000), "b": json.dumps("b" * 15000),
                             "c": '"c"'})
    everything = environment.TrainingEnv(cfg, 0, 1).to_env_vars()
    size = sum(len(k) + len(v) + 2 + 8 for k, v in everything.items()) + sum(
        len(a) + 1 + 8 for a in ["--a", "a" * 20000, "--b", "b" * 15000, "--c", "c"])
    assert environment.TrainingEnv(cfg, 0, 1, arg_room=size).to_env_vars() == everything
    # 60 KB short: SM_TRAINING_ENV (105 KB), the largest, is enough.
    out = environment.TrainingEnv(cfg, 0, 1, arg_room=size - 60000).to_env_vars()
    assert set(everything) - set(out) == {"SM_TRAINING_ENV"}
    # 150 KB short: SM_TRAINING_ENV, then SM_USER_ARGS and SM_HPS (35 KB each).
    warnings.seek(0)
    warnings.truncate()
    out = environment.TrainingEnv(cfg, 0, 1, arg_room=size - 150000).to_env_vars()
    assert set(everything) - set(out) == {"SM_TRAINING_ENV", "SM_USER_ARGS", "SM_HPS"}
    assert [line.split()[0] for line in _left_out(warnings)] == ["SM_TRAINING_ENV", "SM_USER_ARGS", "SM_HPS"]
    assert out["SM_HP_A"] == "a" * 20000 and out["SM_HP_C"] == "c"


def test_arg_room_is_a_quarter_of_the_stack_less_what_is_inherited():
    inherited = {"PATH": "/usr/bin", "HOME": "/root"}
    taken = len("PATH=/usr/bin") + 1 + 8 + len("HOME=/root") + 1 + 8 + environment.ARG_SPACE_RESERVE
    assert environment.arg_room(inherited, 8 * 1024 * 1024) == 2 * 1024 * 1024 - taken
    assert environment.arg_room(inherited, 64 * 1024) == 128 * 1024 - taken  # never below 128 KiB
    assert environment.arg_room(inherited, -1) == 6 * 1024 * 1024 - taken  # unlimited: 3/4 of 8 MiB


def test_an_argument_over_the_limit_for_one_string_is_a_configuration_error():
    environment.check_arguments({"fits": "x" * 131060, "b": "y"})
    with pytest.raises(ConfigError) as e:
        environment.check_arguments({"fits": "x" * 131060, "huge": "y" * 131072})
    assert str(e.value) == ("hyperparameters.json: field 'huge' is 131073 bytes as a command-line argument, over "
                            "Linux's limit of 131072 for one argument (its closing NUL included); pass such data in "
                            "a channel or a file with the code instead")


def test_arguments_over_the_room_are_a_configuration_error():
    hps = {"h{}".format(i): "x" * 2500 for i in range(100)}
    environment.check_arguments(hps, arg_room=300000)
    with pytest.raises(ConfigError) as e:
        environment.check_arguments(hps, arg_room=200000)
    assert str(e.value) == ("hyperparameters.json: the user hyperparameters make 252290 bytes of command-line "
                            "arguments, over the 200000 this host allows (a quarter of the stack size limit, less "
                            "the inherited environment); pass such data in a channel or a file with the code instead")


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
    assert environment.TrainingEnv._fields == ("config", "num_gpus", "num_cpus", "arg_room")
    with pytest.raises(AttributeError):
        env.num_gpus = 2
