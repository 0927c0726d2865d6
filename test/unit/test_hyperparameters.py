"""Pure hyperparameter handling (docs/contract.md section 2): decoding, encoding, the reserved split, argv rendering."""

import pytest

from mx_training_toolkit import hyperparameters as hp

DEEP = "[" * 100000  # deeper than the JSON parser goes


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("10", 10),
        ("-3", -3),
        ("0.25", 0.25),
        ("1e3", 1000.0),
        ("true", True),
        ("false", False),
        ("null", None),
        ('"train.py"', "train.py"),
        ('"10"', "10"),  # a string that looks like a number stays a string
        ('[1, "a"]', [1, "a"]),
        ('{"k": 1}', {"k": 1}),
        (" 7 ", 7),
        # not JSON: kept as the raw string (tools other than the SDK send raw strings)
        ("train.py", "train.py"),
        ("True", "True"),
        ("", ""),
        ("[1, 2", "[1, 2"),
        ("'single'", "'single'"),
        ("0x10", "0x10"),
        (DEEP, DEEP),
        # already decoded (tools that write real JSON values)
        (5, 5),
        (True, True),
        ([1, 2], [1, 2]),
        (None, None),
    ],
)
def test_decode_each_value_tolerantly(raw, expected):
    assert hp.decode({"x": raw}) == {"x": expected}


def test_decode_keeps_every_key():
    raw = {"a": "1", "b": "not json", "sagemaker_program": '"t.py"'}
    assert hp.decode(raw) == {"a": 1, "b": "not json", "sagemaker_program": "t.py"}


@pytest.mark.parametrize(
    "key, reserved",
    [
        ("sagemaker_program", True),
        ("sagemaker_submit_directory", True),
        ("sagemaker_parameter_server_enabled", True),
        ("sagemaker_anything_new", True),
        ("sagemaker_", True),
        ("_tuning_objective_metric", True),
        ("default_user_module_name", True),
        ("_ps_port", True),
        ("_ps_verbose", True),
        ("lr", False),
        ("epochs", False),
        ("sagemaker", False),
        ("SAGEMAKER_PROGRAM", False),
        ("my_sagemaker_thing", False),
        ("_ps_port_x", False),
        ("ps_port", False),
        ("_tuning_objective_metric2", False),
        ("learning-rate", False),
    ],
)
def test_reserved_split(key, reserved):
    user, res = hp.split({key: 1, "other": 2})
    assert (key in res) is reserved
    assert (key in user) is not reserved
    assert user["other"] == 2 and "other" not in res
    assert hp.is_reserved(key) is reserved


def test_framework_params_are_the_unfixed_sagemaker_keys():
    _user, reserved = hp.split({
        "sagemaker_program": "t.py",
        "sagemaker_submit_directory": "s3://b/k",
        "sagemaker_container_log_level": 20,
        "sagemaker_job_name": "j",
        "sagemaker_region": "us-east-1",
        "sagemaker_parameter_server_enabled": True,
        "sagemaker_mpi_enabled": False,
        "_ps_port": 8000,
        "_tuning_objective_metric": "loss",
        "lr": 0.1,
    })
    assert hp.framework_params(reserved) == {"sagemaker_parameter_server_enabled": True,
                                             "sagemaker_mpi_enabled": False}


@pytest.mark.parametrize(
    "user, argv",
    [
        ({}, []),
        ({"lr": 0.1}, ["--lr", "0.1"]),
        ({"k": 3}, ["-k", "3"]),
        ({"b": 1, "a": 2, "cc": 3}, ["-a", "2", "-b", "1", "--cc", "3"]),
        ({"epochs": 10, "batch-size": 32, "Alpha": 1}, ["--Alpha", "1", "--batch-size", "32", "--epochs", "10"]),
        ({"flag": True, "off": False}, ["--flag", "True", "--off", "False"]),
        ({"l": [1, "a"]}, ["-l", "[1, 'a']"]),
        ({"nested": [[1, 2], {"x": None}]}, ["--nested", "[[1, 2], {'x': None}]"]),
        ({"empty": []}, ["--empty", "[]"]),
        ({"d": {"k2": "v2", "k1": "v1"}}, ["-d", "k1=v1,k2=v2"]),
        ({"d": {"b": 2, "a": True, "c": [1]}}, ["-d", "a=True,b=2,c=[1]"]),
        ({"d": {}}, ["-d", ""]),
        ({"f": 1.0}, ["-f", "1.0"]),
        ({"f": 1e-05}, ["-f", "1e-05"]),
        ({"f": 1e20}, ["-f", "1e+20"]),
        ({"big": 12345678901234567890}, ["--big", "12345678901234567890"]),
        ({"s": "hello world"}, ["-s", "hello world"]),
        ({"s": ""}, ["-s", ""]),
        ({"s": "--not-a-flag"}, ["-s", "--not-a-flag"]),
        ({"s": "ünïcode"}, ["-s", "ünïcode"]),
        ({"s": "a;rm -rf /"}, ["-s", "a;rm -rf /"]),  # one argv element, never a shell
        ({"n": None}, ["-n", "None"]),
    ],
)
def test_argv_rendering_matches_the_reference(user, argv):
    assert hp.to_cmd_args(user) == argv


def test_argv_from_sdk_encoded_values():
    raw = {"epochs": "10", "lr": "0.01", "optimizer": '"sgd"', "use-gpu": "false", "layers": "[64, 32]",
           "sagemaker_program": '"train.py"'}
    user, _reserved = hp.split(hp.decode(raw))
    assert hp.to_cmd_args(user) == ["--epochs", "10", "--layers", "[64, 32]", "--lr", "0.01",
                                    "--optimizer", "sgd", "--use-gpu", "False"]


@pytest.mark.parametrize(
    "value, expected",
    [
        (True, True), (False, False), (1, True), (0, False), (0.0, False),
        ("true", True), ("True", True), ("TRUE", True), (" yes ", True), ("1", True), ("on", True),
        ("false", False), ("False", False), ("0", False), ("no", False), ("off", False), ("", False),
    ],
)
def test_to_bool(value, expected):
    assert hp.to_bool(value) is expected


@pytest.mark.parametrize("value", ["maybe", "2", "tru", None, [], {}, [True]])
def test_to_bool_refuses(value):
    with pytest.raises(ValueError):
        hp.to_bool(value)


@pytest.mark.parametrize(
    "value, encoded",
    [
        (10, "10"),
        (0.25, "0.25"),
        (True, "true"),
        (None, "null"),
        ("train.py", '"train.py"'),
        ("10", '"10"'),  # a string that looks like a number stays a string
        ([64, 32], "[64, 32]"),
        ({"k": "v"}, '{"k": "v"}'),
        ("ünï", '"\\u00fcn\\u00ef"'),
    ],
)
def test_encode_like_the_sdk(value, encoded):
    assert hp.encode({"x": value}) == {"x": encoded}
    assert hp.decode(hp.encode({"x": value})) == {"x": value}


def test_encode_then_decode_is_the_identity():
    values = {"epochs": 10, "lr": 0.01, "optimizer": "sgd", "use-gpu": False, "layers": [64, 32],
              "d": {"a": None}, "empty": "", "sagemaker_program": "train.py"}
    assert hp.decode(hp.encode(values)) == values
    assert all(isinstance(v, str) for v in hp.encode(values).values())
