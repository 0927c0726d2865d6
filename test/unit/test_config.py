"""Reading and validating the three config files (docs/contract.md sections 1 and 2)."""

import json
import os

import pytest

from mx_training_toolkit import config, jobfiles, jsonfile
from mx_training_toolkit.errors import ConfigError
from mx_training_toolkit import plan

HPS = "hyperparameters.json"
RES = "resourceconfig.json"
DATA = "inputdataconfig.json"
PROGRAM = {"sagemaker_program": '"train.py"'}


def make_base(tmp_path, files, channels=()):
    """A base directory with the given config files: a dict is JSON-dumped, bytes/str written as they are."""
    base = tmp_path / "ml"
    cfg = base / "input" / "config"
    cfg.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, (dict, list)):
            content = json.dumps(content)
        if isinstance(content, str):
            content = content.encode("utf-8")
        (cfg / name).write_bytes(content)
    for channel in channels:
        (base / "input" / "data" / channel).mkdir(parents=True)
    return str(base)


def load(tmp_path, files, environ=None, channels=()):
    return config.load(make_base(tmp_path, files, channels), environ or {})


def test_defaults_with_only_an_entry_point(tmp_path):
    cfg = load(tmp_path, {HPS: PROGRAM})
    assert cfg.user_entry_point == "train.py"
    assert cfg.module_name == "train"
    assert (cfg.current_host, cfg.hosts) == ("algo-1", ("algo-1",))
    assert cfg.network_interface_name == "eth0"
    assert cfg.current_instance_type == "local"
    assert cfg.log_level == 20
    assert cfg.ps_port == 8000 and cfg.ps_verbose == 0
    assert cfg.parameter_server_enabled is False
    assert cfg.legacy_mode is None
    assert cfg.submit_directory is None
    assert cfg.channels == ()
    assert cfg.user_hyperparameters == {}
    assert _scheduler(cfg)


def test_a_full_job(tmp_path):
    hps = {
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": '"s3://bucket/src.tar.gz"',
        "sagemaker_container_log_level": "10",
        "sagemaker_job_name": '"job-1"',
        "sagemaker_region": '"eu-west-1"',
        "sagemaker_parameter_server_enabled": "true",
        "_ps_port": 9000,  # an int, not a string: accepted (the reference crashes)
        "_ps_verbose": '"1"',
        "epochs": "10",
        "optimizer": "sgd",  # raw, not JSON-encoded
    }
    resource = {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"], "network_interface_name": "ens5",
                "current_instance_type": "ml.c5.xlarge"}
    data = {"train": {"TrainingInputMode": "File"}, "eval": {}, "stream": {"TrainingInputMode": "Pipe"}}
    cfg = load(tmp_path, {HPS: hps, RES: resource, DATA: data}, channels=("train", "eval"))
    assert cfg.user_hyperparameters == {"epochs": 10, "optimizer": "sgd"}
    assert cfg.reserved_hyperparameters["_ps_port"] == 9000
    assert cfg.submit_directory == "s3://bucket/src.tar.gz"
    assert (cfg.log_level, cfg.job_name, cfg.region) == (10, "job-1", "eu-west-1")
    assert cfg.parameter_server_enabled is True
    assert (cfg.ps_port, cfg.ps_verbose) == (9000, 1)
    assert (cfg.current_host, cfg.hosts) == ("algo-2", ("algo-1", "algo-2"))
    assert not _scheduler(cfg)
    assert cfg.network_interface_name == "ens5"
    assert cfg.current_instance_type == "ml.c5.xlarge"
    assert cfg.channels == ("eval", "stream", "train")
    assert cfg.paths.channel_dir("train") == os.path.join(cfg.paths.base, "input", "data", "train")


@pytest.mark.parametrize("hps, environ, expected", [
    (PROGRAM, {}, (None, None, None, None, None)),
    ({**PROGRAM, "sagemaker_mpi_enabled": "true"}, {}, (None, None, None, None, None)),  # per host: one per GPU
    ({**PROGRAM, "sagemaker_mpi_num_of_processes_per_host": "4", "sagemaker_mpi_num_processes": "8",
      "sagemaker_job_name": '"hp-job"', "sagemaker_region": '"eu-west-1"'},
     {"TRAINING_JOB_NAME": "platform-job", "AWS_DEFAULT_REGION": "us-east-2"},
     (4, 8, "hp-job", "platform-job", "us-east-2")),
    (PROGRAM, {"TRAINING_JOB_NAME": "", "AWS_DEFAULT_REGION": ""}, (None, None, None, None, None)),  # empty: unset
])
def test_horovod_counts_and_the_platforms_job_name_and_region(tmp_path, hps, environ, expected):
    cfg = load(tmp_path, {HPS: hps}, environ)
    assert (cfg.mpi_processes_per_host, cfg.mpi_num_processes, cfg.job_name, cfg.platform_job_name,
            cfg.default_region) == expected


@pytest.mark.parametrize(
    "hps, environ, expected",
    [
        ({}, {"SAGEMAKER_PROGRAM": "env.py"}, ("env.py", None)),
        (PROGRAM, {"SAGEMAKER_PROGRAM": "env.py"}, ("train.py", None)),  # the hyperparameter wins
        ({}, {"SAGEMAKER_PROGRAM": "e.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/src"}, ("e.py", "/src")),
        ({"sagemaker_program": "raw.py"}, {}, ("raw.py", None)),  # a raw (not JSON) string
        ({"sagemaker_program": '"sub/dir/train.py"'}, {}, ("sub/dir/train.py", None)),
    ],
)
def test_entry_point_and_submit_directory_sources(tmp_path, hps, environ, expected):
    cfg = load(tmp_path, {HPS: hps}, environ)
    assert (cfg.user_entry_point, cfg.submit_directory) == expected


@pytest.mark.parametrize(
    "content",
    [b"\xef\xbb\xbf" + json.dumps(PROGRAM).encode(), json.dumps(PROGRAM, indent=2)],
    ids=["utf8-bom", "indented"],
)
def test_harmless_formatting(tmp_path, content):
    assert load(tmp_path, {HPS: content}).user_entry_point == "train.py"


@pytest.mark.parametrize("legacy_raw, expected", [('"true"', True), ("false", False), ("1", True), ('""', None)])
def test_legacy_mode_switch(tmp_path, legacy_raw, expected):
    cfg = load(tmp_path, {HPS: {**PROGRAM, "sagemaker_mxnet_legacy_mode": legacy_raw}})
    assert cfg.legacy_mode is expected


def test_missing_files_mean_defaults_but_entry_point_is_required(tmp_path):
    with pytest.raises(ConfigError, match="hyperparameters.json: field 'sagemaker_program'.*SAGEMAKER_PROGRAM"):
        load(tmp_path, {})


DEEP = "[" * 100000
ONE = {"current_host": "algo-1", "hosts": ["algo-1"]}

# (files, substring that the error's first line must contain)
BAD = [
    # --- unreadable or not an object
    ({HPS: "{not json"}, "hyperparameters.json: invalid JSON"),
    ({HPS: PROGRAM, RES: "{"}, "resourceconfig.json: invalid JSON"),
    ({HPS: PROGRAM, DATA: "}"}, "inputdataconfig.json: invalid JSON"),
    ({HPS: ""}, "hyperparameters.json: invalid JSON"),
    ({HPS: DEEP}, "hyperparameters.json: invalid JSON: nested too deeply"),
    ({HPS: PROGRAM, RES: DEEP}, "resourceconfig.json: invalid JSON: nested too deeply"),
    ({HPS: b'{"sagemaker_program": "\xff\xfe"}'}, "hyperparameters.json: not valid UTF-8"),
    ({HPS: PROGRAM, DATA: b"\x80"}, "inputdataconfig.json: not valid UTF-8"),
    ({HPS: ["train.py"]}, "hyperparameters.json: expected a JSON object"),
    ({HPS: PROGRAM, RES: '"algo-1"'}, "resourceconfig.json: expected a JSON object"),
    ({HPS: PROGRAM, DATA: "null"}, "inputdataconfig.json: expected a JSON object"),
    # --- hyperparameters
    ({HPS: {"": "1", **PROGRAM}}, "hyperparameters.json: an empty hyperparameter name"),
    ({HPS: {"a=b": "1", **PROGRAM}}, "hyperparameters.json: hyperparameter name 'a=b'"),
    ({HPS: {"x": '"a\\u0000b"', **PROGRAM}}, "hyperparameters.json: field 'x' contains a NUL"),
    ({HPS: {"x": '["\\ud800"]', **PROGRAM}}, "hyperparameters.json: field 'x' contains an unpaired surrogate"),
    ({HPS: {"x\u0000": "1", **PROGRAM}}, "hyperparameters.json: field 'x\\x00' contains a NUL"),
    ({HPS: {"sagemaker_program": "5"}}, "hyperparameters.json: field 'sagemaker_program' must be a file name"),
    ({HPS: {"sagemaker_program": '""'}}, "hyperparameters.json: field 'sagemaker_program' must be a file name"),
    ({HPS: {"sagemaker_program": '"/abs/train.py"'}}, "field 'sagemaker_program' must name a file inside"),
    ({HPS: {"sagemaker_program": '"../train.py"'}}, "field 'sagemaker_program' must name a file inside"),
    ({HPS: {"sagemaker_program": '"a/../../t.py"'}}, "field 'sagemaker_program' must name a file inside"),
    ({HPS: {**PROGRAM, "sagemaker_submit_directory": "[]"}}, "field 'sagemaker_submit_directory'"),
    ({HPS: {**PROGRAM, "sagemaker_submit_directory": '""'}}, "field 'sagemaker_submit_directory'"),
    ({HPS: {**PROGRAM, "sagemaker_container_log_level": "abc"}}, "field 'sagemaker_container_log_level'"),
    ({HPS: {**PROGRAM, "sagemaker_container_log_level": "99"}}, "field 'sagemaker_container_log_level'"),
    ({HPS: {**PROGRAM, "sagemaker_container_log_level": "2.5"}}, "field 'sagemaker_container_log_level'"),
    ({HPS: {**PROGRAM, "sagemaker_container_log_level": "true"}}, "integer between 0 and 50, got True"),
    ({HPS: {**PROGRAM, "_ps_port": "99999"}}, "hyperparameters.json: field '_ps_port'"),
    ({HPS: {**PROGRAM, "_ps_port": 0}}, "hyperparameters.json: field '_ps_port'"),
    ({HPS: {**PROGRAM, "_ps_port": '"http"'}}, "hyperparameters.json: field '_ps_port'"),
    ({HPS: {**PROGRAM, "_ps_port": "1e999"}}, "hyperparameters.json: field '_ps_port'"),
    ({HPS: {**PROGRAM, "_ps_verbose": "7"}}, "hyperparameters.json: field '_ps_verbose'"),
    ({HPS: {**PROGRAM, "sagemaker_parameter_server_enabled": "maybe"}},
     "field 'sagemaker_parameter_server_enabled' must be true or false"),
    ({HPS: {**PROGRAM, "sagemaker_parameter_server_enabled": "[]"}}, "field 'sagemaker_parameter_server_enabled'"),
    ({HPS: {**PROGRAM, "sagemaker_mxnet_legacy_mode": '"perhaps"'}}, "field 'sagemaker_mxnet_legacy_mode'"),
    ({HPS: {**PROGRAM, "sagemaker_mpi_enabled": "true", "sagemaker_parameter_server_enabled": "true"}},
     "hyperparameters.json: fields 'sagemaker_parameter_server_enabled' and 'sagemaker_mpi_enabled' are both true; "
     "a job distributes with one of them"),
    ({HPS: {**PROGRAM, "sagemaker_mpi_enabled": "true", "sagemaker_mpi_num_processes": "many"}},
     "hyperparameters.json: field 'sagemaker_mpi_num_processes' must be an integer, got 'many'"),
    ({HPS: {**PROGRAM, "sagemaker_mpi_num_of_processes_per_host": "0"}},
     "hyperparameters.json: field 'sagemaker_mpi_num_of_processes_per_host'"),
    ({HPS: {**PROGRAM, "sagemaker_mpi_custom_mpi_options": "[1]"}},
     "hyperparameters.json: field 'sagemaker_mpi_custom_mpi_options' must be a string of mpirun options"),
    ({HPS: {**PROGRAM, "sagemaker_mpi_enabled": '"sometimes"'}}, "field 'sagemaker_mpi_enabled' must be true or false"),
    ({HPS: {**PROGRAM, "sagemaker_job_name": "5"}}, "field 'sagemaker_job_name' must be a string"),
    ({HPS: {**PROGRAM, "sagemaker_region": "null"}}, "field 'sagemaker_region' must be a string"),
    # --- resource config
    ({HPS: PROGRAM, RES: {"current_host": "algo-1", "hosts": "algo-1"}}, "resourceconfig.json: field 'hosts'"),
    ({HPS: PROGRAM, RES: {"current_host": "algo-1", "hosts": ["algo-1", 2]}}, "resourceconfig.json: field 'hosts'"),
    ({HPS: PROGRAM, RES: {"current_host": "algo-1", "hosts": ["algo-1", ""]}}, "resourceconfig.json: field 'hosts'"),
    ({HPS: PROGRAM, RES: {"current_host": "algo-1", "hosts": []}}, "resourceconfig.json: field 'hosts' is empty"),
    ({HPS: PROGRAM, RES: {"current_host": "algo-1", "hosts": ["algo-1", "algo-1"]}},
     "resourceconfig.json: field 'hosts' lists a host twice"),
    ({HPS: PROGRAM, RES: {"current_host": "algo-1"}}, "resourceconfig.json: required field 'hosts' is missing"),
    ({HPS: PROGRAM, RES: {"hosts": ["algo-1"]}}, "resourceconfig.json: required field 'current_host' is missing"),
    ({HPS: PROGRAM, RES: {"current_host": 1, "hosts": ["algo-1"]}}, "resourceconfig.json: field 'current_host'"),
    ({HPS: PROGRAM, RES: {"current_host": "algo-3", "hosts": ["algo-1", "algo-2"]}},
     "resourceconfig.json: current_host 'algo-3' is not in hosts"),
    ({HPS: PROGRAM, RES: {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": 0}},
     "resourceconfig.json: field 'network_interface_name'"),
    ({HPS: PROGRAM, RES: {"current_host": "algo-1", "hosts": ["algo-1"], "current_instance_type": ""}},
     "resourceconfig.json: field 'current_instance_type'"),
    ({HPS: PROGRAM, RES: {"current_host": "al\u0000go", "hosts": ["al\u0000go"]}},
     "resourceconfig.json: field 'current_host' contains a NUL"),
    ({HPS: PROGRAM, RES: dict(ONE, instance_groups={"a": ["algo-1"]})},
     "resourceconfig.json: field 'instance_groups' must be a list of instance groups, got {'a': ['algo-1']}"),
    ({HPS: PROGRAM, RES: dict(ONE, instance_groups=["a"])},
     "resourceconfig.json: field 'instance_groups' must hold objects, got 'a'"),
    ({HPS: PROGRAM, RES: dict(ONE, instance_groups=[{"hosts": ["algo-1"]}])},
     "resourceconfig.json: required field 'instance_group_name' is missing"),
    ({HPS: PROGRAM, RES: dict(ONE, instance_groups=[{"instance_group_name": "a", "hosts": []}])},
     "resourceconfig.json: instance group 'a' must list its hosts, got []"),
    ({HPS: PROGRAM, RES: dict(ONE, instance_groups=[{"instance_group_name": "a", "hosts": ["algo-9"]}])},
     "resourceconfig.json: instance group 'a' lists 'algo-9', which is not in hosts ['algo-1']"),
    ({HPS: PROGRAM, RES: dict(ONE, instance_groups=[{"instance_group_name": "a", "hosts": ["algo-1"]},
                                                   {"instance_group_name": "b", "hosts": ["algo-1"]}])},
     "resourceconfig.json: host 'algo-1' is in instance groups 'a' and 'b'"),
    ({HPS: PROGRAM, RES: dict(ONE, instance_groups=[{"instance_group_name": "a", "hosts": ["algo-1"]},
                                                   {"instance_group_name": "a", "hosts": ["algo-1"]}])},
     "resourceconfig.json: instance group 'a' is listed twice"),
    ({HPS: PROGRAM, RES: dict(ONE, current_group_name="")},
     "resourceconfig.json: field 'current_group_name' must be a non-empty string, got ''"),
    ({HPS: {**PROGRAM, "sagemaker_distribution_instance_groups": '"train1"'}},
     "hyperparameters.json: field 'sagemaker_distribution_instance_groups' must be a non-empty list of instance "
     "group names, got 'train1'"),
    ({HPS: {**PROGRAM, "sagemaker_distribution_instance_groups": "[]"}},
     "field 'sagemaker_distribution_instance_groups' must be a non-empty list of instance group names, got []"),
    ({HPS: {**PROGRAM, "sagemaker_distribution_instance_groups": '["nope"]'},
      RES: dict(ONE, instance_groups=[{"instance_group_name": "a", "hosts": ["algo-1"]}])},
     "hyperparameters.json: field 'sagemaker_distribution_instance_groups' names instance group 'nope', which "
     "resourceconfig.json does not list (it lists a)"),
    # --- input data config
    ({HPS: PROGRAM, DATA: {"train": "File"}}, "inputdataconfig.json: channel 'train' must be a JSON object"),
    ({HPS: PROGRAM, DATA: {"train": ["File"]}}, "inputdataconfig.json: channel 'train' must be a JSON object"),
    ({HPS: PROGRAM, DATA: {"missing": {"TrainingInputMode": "File"}}},
     "inputdataconfig.json: channel 'missing' has no data directory"),
    ({HPS: PROGRAM, DATA: {"train": {"TrainingInputMode": 5}}},
     "inputdataconfig.json: field 'TrainingInputMode' of channel 'train' must be a string"),
    ({HPS: PROGRAM, DATA: {"a/b": {}}}, "inputdataconfig.json: 'a/b' is not a valid channel name"),
    ({HPS: PROGRAM, DATA: {"..": {}}}, "inputdataconfig.json: '..' is not a valid channel name"),
    ({HPS: PROGRAM, DATA: {"": {}}}, "inputdataconfig.json: '' is not a valid channel name"),
    ({HPS: PROGRAM, DATA: {"a=b": {}}}, "inputdataconfig.json: 'a=b' is not a valid channel name"),
    ({HPS: PROGRAM, DATA: {"train": {}, "TRAIN": {}}},
     "inputdataconfig.json: channels 'TRAIN' and 'train' both become the environment variable SM_CHANNEL_TRAIN; "
     "rename one"),
    ({HPS: PROGRAM, DATA: {"stra\u00dfe": {}, "STRASSE": {}}},  # "\u00df".upper() is "SS"
     "inputdataconfig.json: channels 'STRASSE' and 'stra\u00dfe' both become the environment variable "
     "SM_CHANNEL_STRASSE"),
    # --- names that collide as environment variables, hyperparameters
    ({HPS: {**PROGRAM, "lr": "0.1", "LR": "0.2"}},
     "hyperparameters.json: hyperparameters 'LR' and 'lr' both become the environment variable SM_HP_LR; rename one"),
    ({HPS: {**PROGRAM, "Batch-Size": "1", "batch-size": "2"}},
     "hyperparameters.json: hyperparameters 'Batch-Size' and 'batch-size' both become the environment variable "
     "SM_HP_BATCH-SIZE"),
    # --- nested past MAX_DEPTH (100 levels): a JSON-encoded value, or the file itself
    ({HPS: {**PROGRAM, "deep": "[" * 101 + "]" * 101}},
     "hyperparameters.json: field 'deep' is nested more than 100 levels deep"),
    ({HPS: {**PROGRAM, "deep": '{"a": ' * 101 + "1" + "}" * 101}},
     "hyperparameters.json: field 'deep' is nested more than 100 levels deep"),
    ({HPS: '{"sagemaker_program": "t.py", "deep": ' + "[" * 101 + "]" * 101 + "}"},
     "hyperparameters.json: field 'deep' is nested more than 100 levels deep"),
    ({HPS: PROGRAM, RES: '{"current_host": "algo-1", "hosts": ["algo-1"], "topology": ' + "[" * 101 + "]" * 101 + "}"},
     "resourceconfig.json: field 'topology' is nested more than 100 levels deep"),
    ({HPS: PROGRAM, DATA: '{"train": {"x": ' + "[" * 100 + "]" * 100 + "}}"},
     "inputdataconfig.json: field 'train' is nested more than 100 levels deep"),
]


@pytest.mark.parametrize("files, message", BAD, ids=["{:02d}".format(i) for i in range(len(BAD))])
def test_bad_config_names_the_file_and_field(tmp_path, files, message):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, files, channels=("train",))
    text = str(info.value)
    assert "\n" not in text
    assert message in text
    assert info.value.step == "configuration"


def test_unreadable_config_is_a_config_error(tmp_path):
    base = make_base(tmp_path, {HPS: PROGRAM})
    os.makedirs(os.path.join(base, "input", "config", RES))  # a directory where the file should be
    with pytest.raises(ConfigError, match="resourceconfig.json: cannot read the file"):
        config.load(base, {})


def test_nesting_up_to_the_limit_is_accepted(tmp_path):
    deep = "[" * jsonfile.MAX_DEPTH + "]" * jsonfile.MAX_DEPTH
    cfg = load(tmp_path, {HPS: {**PROGRAM, "deep": deep}})
    assert json.dumps(cfg.hyperparameters["deep"], separators=(",", ":")) == deep


@pytest.mark.parametrize("name, make, kind", [
    (DATA, lambda path: os.symlink(os.devnull, path), "a character device"),  # read forever: /dev/zero
    (RES, os.mkdir, "a directory"),
])
def test_a_config_file_that_is_not_a_regular_file_is_refused(tmp_path, name, make, kind):
    # A FIFO, which would block the read, is tested through train (test_hostile_config.py).
    base = make_base(tmp_path, {HPS: PROGRAM})
    make(os.path.join(base, "input", "config", name))
    with pytest.raises(ConfigError) as info:
        config.load(base, {})
    assert str(info.value) == "{}: cannot read the file (it is {}, not a regular file)".format(name, kind)


@pytest.mark.parametrize("program, entry_point, module_name", [
    ("./t.py", "t.py", "t"),
    ("././t.py", "t.py", "t"),
    ("sub//./t.py", "sub/t.py", "sub/t"),
    ("./run.sh", "run.sh", "run.sh"),
])
def test_the_entry_point_is_normalised(tmp_path, program, entry_point, module_name):
    cfg = load(tmp_path, {HPS: {"sagemaker_program": json.dumps(program)}})
    assert (cfg.user_entry_point, cfg.module_name) == (entry_point, module_name)


def test_load_creates_nothing(tmp_path):
    base = make_base(tmp_path, {HPS: PROGRAM})
    before = sorted(os.walk(base))
    config.load(base, {})
    assert sorted(os.walk(base)) == before


@pytest.mark.parametrize("environ, expected", [({}, "/opt/ml"), ({"SAGEMAKER_BASE_DIR": "/x"}, "/x"),
                                               ({"SAGEMAKER_BASE_DIR": ""}, "/opt/ml")])
def test_base_dir(environ, expected):
    assert config.base_dir_from(environ) == expected


@pytest.mark.parametrize("value, expected", [("ml", "ml"), ("./jobs/../ml", "ml"), ("ml/", "ml")])
def test_a_relative_base_dir_is_made_absolute(tmp_path, monkeypatch, value, expected):
    monkeypatch.chdir(tmp_path)
    assert config.base_dir_from({"SAGEMAKER_BASE_DIR": value}) == str(tmp_path / expected)


# ---- the records ------------------------------------------------------------------------------


def test_job_config_defaults_are_those_of_a_one_host_job_with_only_an_entry_point(tmp_path):
    base = make_base(tmp_path, {HPS: PROGRAM})
    loaded = config.load(base, {})
    built = config.JobConfig(paths=config.Paths(base), hyperparameters={"sagemaker_program": "train.py"},
                             reserved_hyperparameters={"sagemaker_program": "train.py"})
    assert loaded == built
    assert config.JobConfig().paths == config.Paths("/opt/ml")


def test_a_job_config_in_one_line():
    cfg = config.JobConfig(paths=config.Paths("/tmp/x"), hosts=("algo-1", "algo-2"), current_host="algo-2")
    assert not _scheduler(cfg)
    assert cfg.ps_port == 8000 and cfg.log_level == 20 and cfg.user_hyperparameters == {}
    assert cfg.paths.model_dir == "/tmp/x/model"
    assert _scheduler(cfg._replace(current_host="algo-1"))


def test_records_are_immutable_and_keep_their_fields():
    cfg = config.JobConfig()
    with pytest.raises(AttributeError):
        cfg.ps_port = 1
    with pytest.raises(TypeError):  # the shared default mapping is read-only
        cfg.hyperparameters["x"] = 1
    assert not hasattr(cfg, "__dict__") and not hasattr(config.Paths("/x"), "__dict__")
    assert config.Paths._fields == ("base",)
    assert config.JobConfig._fields[:3] == ("paths", "hyperparameters", "user_hyperparameters")
    assert config.JobConfig._fields[-10:] == ("channels", "current_instance_group", "instance_groups",
                                              "distribution_instance_groups", "mpi_enabled", "mpi_processes_per_host",
                                              "mpi_custom_options", "mpi_num_processes", "platform_job_name",
                                              "default_region")
    assert len(config.JobConfig._fields) == 29


@pytest.mark.parametrize("attr, parts", [
    ("input_dir", ("input",)),
    ("input_config_dir", ("input", "config")),
    ("input_data_dir", ("input", "data")),
    ("hyperparameters_file", ("input", "config", "hyperparameters.json")),
    ("resource_config_file", ("input", "config", "resourceconfig.json")),
    ("input_data_config_file", ("input", "config", "inputdataconfig.json")),
    ("code_dir", ("code",)),
    ("model_dir", ("model",)),
    ("output_dir", ("output",)),
    ("output_data_dir", ("output", "data")),
    ("output_intermediate_dir", ("output", "intermediate")),
    ("success_file", ("output", "success")),
    ("failure_file", ("output", "failure")),
])
def test_paths(attr, parts):
    assert getattr(config.Paths("/opt/ml"), attr) == os.path.join("/opt/ml", *parts)


# ---- instance groups (heterogeneous clusters) -------------------------------------------------

GROUPS = {"train1": ["algo-1", "algo-2"], "data": ["algo-3"]}


@pytest.mark.parametrize("host, group", [("algo-1", "train1"), ("algo-2", "train1"), ("algo-3", "data")])
def test_the_platforms_resource_config_of_a_heterogeneous_cluster(tmp_path, host, group):
    resource = jobfiles.group_resource_config(host, GROUPS, network_interface_name="lo")
    assert resource == {
        "current_host": host, "current_instance_type": "local", "current_group_name": group,
        "hosts": ["algo-1", "algo-2", "algo-3"],
        "instance_groups": [{"instance_group_name": "train1", "instance_type": "local", "hosts": ["algo-1", "algo-2"]},
                            {"instance_group_name": "data", "instance_type": "local", "hosts": ["algo-3"]}],
        "network_interface_name": "lo"}
    paths = jobfiles.write_job(tmp_path / host, {"sagemaker_program": "t.py",
                                                "sagemaker_distribution_instance_groups": ["train1"]}, resource)
    cfg = config.load(paths.base, {})
    assert cfg.current_instance_group == group
    assert cfg.instance_groups == (config.InstanceGroup("train1", "local", ("algo-1", "algo-2")),
                                   config.InstanceGroup("data", "local", ("algo-3",)))
    assert cfg.distribution_instance_groups == ("train1",)
    assert cfg.distribution_hosts == plan.ps_hosts(cfg) == ("algo-1", "algo-2")
    assert cfg.master_hostname == "algo-1"
    assert _scheduler(cfg) is (host == "algo-1") and (cfg.current_host == cfg.hosts[0]) is (host == "algo-1")


def _grouped(current, distribution=None, **fields):
    groups = (config.InstanceGroup("train1", "local", ("algo-1", "algo-2")),
              config.InstanceGroup("train2", "local", ("algo-3",)))
    group = "train2" if current == "algo-3" else "train1"
    return config.JobConfig(hosts=("algo-1", "algo-2", "algo-3"), current_host=current, instance_groups=groups,
                            current_instance_group=group, distribution_instance_groups=distribution, **fields)


@pytest.mark.parametrize("cfg, groups, distribution_hosts, ps_hosts", [
    (config.JobConfig(), (), ("algo-1",), ("algo-1",)),
    (config.JobConfig(parameter_server_enabled=True), ("homogeneousCluster",), ("algo-1",), ("algo-1",)),
    (_grouped("algo-1"), (), (), ("algo-1", "algo-2", "algo-3")),
    (_grouped("algo-3", parameter_server_enabled=True), ("train2",), ("algo-3",), ("algo-1", "algo-2", "algo-3")),
    (_grouped("algo-3", ("train1",)), ("train1",), ("algo-1", "algo-2"), ("algo-1", "algo-2")),
    (_grouped("algo-1", ("train2",)), ("train2",), ("algo-3",), ("algo-3",)),
])
def test_distribution_groups_and_the_parameter_server_hosts(cfg, groups, distribution_hosts, ps_hosts):
    # The reference's rules for the variables; the parameter server follows only named groups.
    assert cfg.distribution_groups == groups
    assert cfg.distribution_hosts == distribution_hosts
    assert plan.ps_hosts(cfg) == ps_hosts
    assert cfg.master_hostname == (distribution_hosts or cfg.hosts)[0]


@pytest.mark.parametrize("environ, expected", [
    ({"SAGEMAKER_PROGRAM": "../x.py"},
     "environment variable SAGEMAKER_PROGRAM must name a file inside the code, got '../x.py'"),
    ({"SAGEMAKER_PROGRAM": " "}, "environment variable SAGEMAKER_PROGRAM must be a file name, got ' '"),
    ({"SAGEMAKER_PROGRAM": "t.py", "SAGEMAKER_MXNET_LEGACY_MODE": "maybe"},
     "environment variable SAGEMAKER_MXNET_LEGACY_MODE must be true or false, got 'maybe'"),
])
def test_a_bad_launcher_variable_is_named_as_the_variable_not_as_a_field(tmp_path, environ, expected):
    with pytest.raises(ConfigError) as e:
        load(tmp_path, {}, environ)
    assert str(e.value) == expected


def test_the_variable_pins_legacy_mode_when_the_hyperparameter_is_absent(tmp_path):
    assert load(tmp_path, {HPS: PROGRAM}, {"SAGEMAKER_MXNET_LEGACY_MODE": "true"}).legacy_mode is True
    assert load(tmp_path / "2", {HPS: {**PROGRAM, "sagemaker_mxnet_legacy_mode": "false"}},
                {"SAGEMAKER_MXNET_LEGACY_MODE": "true"}).legacy_mode is False  # the hyperparameter wins


@pytest.mark.parametrize("files, expected", [
    ({HPS: {"_ps_port": "9000", "sagemaker_job_name": '"j"', "bad": {"x": [1]}},
      RES: {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}},
     ("algo-2", ("algo-1", "algo-2"), 9000, "j")),
    ({HPS: {}, RES: {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}},
     ("algo-2", ("algo-1", "algo-2"), 8000, None)),
    ({HPS: {}}, None),  # one host: nobody to tell
    ({HPS: {"_ps_port": "0"}, RES: {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}}, None),
    ({HPS: {}, RES: {"current_host": "algo-3", "hosts": ["algo-1", "algo-2"]}}, None),
    ({HPS: b"{not json", RES: {"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}}, None),
])
def test_what_a_host_whose_configuration_failed_needs_to_reach_the_first_host(tmp_path, files, expected):
    facts = config.channel_facts(make_base(tmp_path, files, ()))
    assert (facts[:4] if facts else None) == expected


def _scheduler(cfg):
    """Whether this host runs the parameter-server scheduler (the planner's rule)."""
    return plan.ps_hosts(cfg)[0] == cfg.current_host
