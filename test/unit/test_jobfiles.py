"""Writing the three config files the way the platform does, and reading them back (docs/contract.md
sections 1 and 2)."""

import json
import os

import pytest

from mx_training_toolkit import config, jobfiles
from mx_training_toolkit.errors import ConfigError

HPS = "hyperparameters.json"
RES = "resourceconfig.json"
DATA = "inputdataconfig.json"


def test_write_job_then_load_round_trip(tmp_path):
    base = str(tmp_path / "ml")
    os.makedirs(os.path.join(base, "input", "data", "train"))
    hps = {"sagemaker_program": "train.py", "sagemaker_parameter_server_enabled": True, "_ps_port": 9000,
           "epochs": 10, "lr": 0.5, "optimizer": "sgd", "layers": [64, 32], "d": {"k": "v"}, "flag": False,
           "ten": "10"}
    resource = {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"], "network_interface_name": "lo"}
    data = {"train": {"TrainingInputMode": "File"}}
    paths = jobfiles.write_job(base, hps, resource, data)
    assert paths == config.Paths(base)
    cfg = config.load(base, {})
    assert dict(cfg.hyperparameters) == hps
    assert cfg.user_hyperparameters == {"epochs": 10, "lr": 0.5, "optimizer": "sgd", "layers": [64, 32],
                                        "d": {"k": "v"}, "flag": False, "ten": "10"}
    assert (cfg.current_host, cfg.hosts, cfg.network_interface_name) == ("algo-2", ("algo-1", "algo-2"), "lo")
    assert cfg.parameter_server_enabled and cfg.ps_port == 9000
    assert cfg.channels == ("train",) and cfg.input_data_config == data and cfg.resource_config == resource


def test_write_job_encodes_values_like_the_sdk(tmp_path):
    paths = jobfiles.write_job(tmp_path / "ml", {"sagemaker_program": "train.py", "epochs": 10, "ten": "10"})
    with open(paths.hyperparameters_file) as f:
        assert json.load(f) == {"sagemaker_program": '"train.py"', "epochs": "10", "ten": '"10"'}
    assert isinstance(paths.base, str)


def test_write_job_without_encoding_writes_values_as_given(tmp_path):
    raw = {"sagemaker_program": "raw.py", "_ps_port": 9000, "epochs": "10"}
    paths = jobfiles.write_job(str(tmp_path / "ml"), raw, encode=False)
    with open(paths.hyperparameters_file) as f:
        assert json.load(f) == raw
    cfg = config.load(paths.base, {})
    assert (cfg.user_entry_point, cfg.ps_port, cfg.user_hyperparameters) == ("raw.py", 9000, {"epochs": 10})


def test_write_job_leaves_out_what_is_none(tmp_path):
    paths = jobfiles.write_job(str(tmp_path / "ml"))
    with open(paths.hyperparameters_file) as f:
        assert json.load(f) == {}
    assert sorted(os.listdir(paths.input_config_dir)) == [HPS]
    with open(paths.resource_config_file, "w") as f:  # written by hand (a test's broken file): kept
        f.write("{")
    jobfiles.write_job(paths.base, {"sagemaker_program": "t.py"})
    with open(paths.resource_config_file) as f:
        assert f.read() == "{"
    jobfiles.write_job(paths.base, {"sagemaker_program": "t.py"}, resource_config={}, input_data_config={})
    assert sorted(os.listdir(paths.input_config_dir)) == [HPS, DATA, RES]
    assert config.load(paths.base, {}).hosts == ("algo-1",)


def test_write_job_writes_what_it_is_given_without_validating(tmp_path):
    paths = jobfiles.write_job(str(tmp_path / "ml"), {"sagemaker_program": "t.py"},
                               resource_config={"current_host": "algo-3", "hosts": "algo-1"})
    with pytest.raises(ConfigError, match="resourceconfig.json: field 'hosts'"):
        config.load(paths.base, {})
