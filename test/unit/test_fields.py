"""The table of the launcher's fields (``fields.FIELDS``): each row's source, parser, default and bounds."""

import pytest

from mx_training_toolkit import config, fields, names
from mx_training_toolkit import hyperparameters as hp
from mx_training_toolkit.errors import ConfigError

FIELD = fields.BY_NAME
HP = "hyperparameters.json: field "


def test_every_row_sets_a_jobconfig_attribute_once():
    assert len(FIELD) == len(fields.FIELDS)
    assert set(FIELD) <= set(config.JobConfig._fields)


def test_every_key_is_a_reserved_hyperparameter():
    # A field's key must never reach the script as a user hyperparameter.
    keys = {f.key: None for f in fields.FIELDS if f.key is not None}
    assert hp.split(keys) == ({}, keys)


def test_the_defaults_are_the_records_defaults():
    # JobConfig() describes the job that files naming only train.py describe.
    for f in fields.FIELDS:
        expected = "train.py" if isinstance(f.default, fields.Required) else f.default
        assert config.JobConfig._field_defaults[f.name] == expected, f.name


# (field, reserved hyperparameters (decoded), environment, value)
ACCEPTED = [
    ("user_entry_point", {names.PROGRAM_HP: "t.py"}, {}, "t.py"),
    ("user_entry_point", {names.PROGRAM_HP: "./a//t.py"}, {}, "a/t.py"),  # one spelling
    ("user_entry_point", {}, {names.PROGRAM_ENV: "env.py"}, "env.py"),
    ("user_entry_point", {names.PROGRAM_HP: "hp.py"}, {names.PROGRAM_ENV: "env.py"}, "hp.py"),  # the file wins
    ("submit_directory", {}, {}, None),
    ("submit_directory", {names.SUBMIT_DIR_HP: "s3://b/k.tar.gz"}, {}, "s3://b/k.tar.gz"),
    ("submit_directory", {names.SUBMIT_DIR_HP: None}, {names.SUBMIT_DIR_ENV: "/src"}, None),  # null: not given
    ("submit_directory", {}, {names.SUBMIT_DIR_ENV: "/src"}, "/src"),
    ("log_level", {}, {}, 20),
    ("log_level", {names.LOG_LEVEL_HP: "10"}, {}, 10),
    ("log_level", {names.LOG_LEVEL_HP: 50.0}, {}, 50),
    ("log_level", {names.LOG_LEVEL_HP: 0}, {}, 0),
    ("parameter_server_enabled", {}, {}, False),
    ("parameter_server_enabled", {names.PS_ENABLED_HP: "True"}, {}, True),
    ("mpi_enabled", {names.MPI_ENABLED_HP: True}, {}, True),
    ("mpi_processes_per_host", {}, {}, None),
    ("mpi_processes_per_host", {names.MPI_PROCESSES_HP: None}, {}, None),
    ("mpi_processes_per_host", {names.MPI_PROCESSES_HP: 1024}, {}, 1024),
    ("mpi_num_processes", {names.MPI_TOTAL_HP: 100000}, {}, 100000),  # no maximum
    ("mpi_custom_options", {}, {}, ""),
    ("mpi_custom_options", {names.MPI_OPTIONS_HP: "-x A=1"}, {}, "-x A=1"),
    ("legacy_mode", {}, {}, None),
    ("legacy_mode", {names.LEGACY_MODE_HP: ""}, {names.LEGACY_MODE_ENV: "true"}, None),  # "": not given
    ("legacy_mode", {names.LEGACY_MODE_HP: None}, {}, None),
    ("legacy_mode", {}, {names.LEGACY_MODE_ENV: "false"}, False),
    ("legacy_mode", {}, {names.LEGACY_MODE_ENV: ""}, None),
    ("ps_port", {}, {}, 8000),
    ("ps_port", {names.PS_PORT_HP: "65535"}, {}, 65535),
    ("ps_verbose", {names.PS_VERBOSE_HP: 2}, {}, 2),
    ("job_name", {names.JOB_NAME_HP: "j-1"}, {}, "j-1"),
    ("region", {}, {}, None),
    ("platform_job_name", {}, {names.TRAINING_JOB_NAME_ENV: "j"}, "j"),
    ("platform_job_name", {}, {names.TRAINING_JOB_NAME_ENV: ""}, None),
    ("default_region", {}, {names.AWS_REGION_ENV: "eu-west-1"}, "eu-west-1"),
]


@pytest.mark.parametrize("name, reserved, environ, expected", ACCEPTED)
def test_accepted_values(name, reserved, environ, expected):
    assert FIELD[name].read(reserved, environ) == expected


PROGRAM_MISSING = "hyperparameters.json: field 'sagemaker_program' (the entry point) is missing and " \
                  "SAGEMAKER_PROGRAM is not set"

# (field, reserved hyperparameters (decoded), environment, the whole message)
REFUSED = [
    ("user_entry_point", {}, {}, PROGRAM_MISSING),
    ("user_entry_point", {names.PROGRAM_HP: None}, {}, HP + "'sagemaker_program' must be a file name, got None"),
    ("user_entry_point", {names.PROGRAM_HP: "/abs.py"}, {},
     HP + "'sagemaker_program' must name a file inside the code, got '/abs.py'"),
    ("user_entry_point", {}, {names.PROGRAM_ENV: ""}, "environment variable SAGEMAKER_PROGRAM must be a file name, "
                                                      "got ''"),
    ("submit_directory", {names.SUBMIT_DIR_HP: []}, {}, HP + "'sagemaker_submit_directory' must be a path or URL, "
                                                          "got []"),
    ("submit_directory", {}, {names.SUBMIT_DIR_ENV: ""},
     "environment variable SAGEMAKER_SUBMIT_DIRECTORY must be a path or URL, got ''"),
    ("log_level", {names.LOG_LEVEL_HP: 51}, {}, HP + "'sagemaker_container_log_level' must be an integer between 0 "
                                                    "and 50, got 51"),
    ("log_level", {names.LOG_LEVEL_HP: None}, {}, HP + "'sagemaker_container_log_level' must be an integer between 0 "
                                                      "and 50, got None"),
    ("log_level", {names.LOG_LEVEL_HP: True}, {}, HP + "'sagemaker_container_log_level' must be an integer between 0 "
                                                      "and 50, got True"),
    ("log_level", {names.LOG_LEVEL_HP: 10.5}, {}, HP + "'sagemaker_container_log_level' must be an integer between 0 "
                                                      "and 50, got 10.5"),
    ("parameter_server_enabled", {names.PS_ENABLED_HP: "yes please"}, {},
     HP + "'sagemaker_parameter_server_enabled' must be true or false, got 'yes please'"),
    ("mpi_processes_per_host", {names.MPI_PROCESSES_HP: 0}, {},
     HP + "'sagemaker_mpi_num_of_processes_per_host' must be an integer between 1 and 1024, got 0"),
    ("mpi_num_processes", {names.MPI_TOTAL_HP: 0}, {}, HP + "'sagemaker_mpi_num_processes' must be an integer, got 0"),
    ("mpi_custom_options", {names.MPI_OPTIONS_HP: ["-x"]}, {},
     HP + "'sagemaker_mpi_custom_mpi_options' must be a string of mpirun options, got ['-x']"),
    ("legacy_mode", {}, {names.LEGACY_MODE_ENV: "maybe"},
     "environment variable SAGEMAKER_MXNET_LEGACY_MODE must be true or false, got 'maybe'"),
    ("ps_port", {names.PS_PORT_HP: 65536}, {}, HP + "'_ps_port' must be an integer between 1 and 65535, got 65536"),
    ("ps_verbose", {names.PS_VERBOSE_HP: 3}, {}, HP + "'_ps_verbose' must be an integer between 0 and 2, got 3"),
    ("region", {names.REGION_HP: None}, {}, HP + "'sagemaker_region' must be a string, got None"),
]


@pytest.mark.parametrize("name, reserved, environ, message", REFUSED)
def test_refused_values_name_the_file_and_field_or_the_variable(name, reserved, environ, message):
    with pytest.raises(ConfigError) as info:
        FIELD[name].read(reserved, environ)
    assert str(info.value) == message
    assert info.value.exit_code == 2


def test_read_all_gives_every_field_and_refuses_two_distributions():
    values = fields.read_all({names.PROGRAM_HP: "t.py"}, {})
    assert values == {f.name: ("t.py" if f.name == "user_entry_point" else f.default) for f in fields.FIELDS}
    with pytest.raises(ConfigError) as info:
        fields.read_all({names.PROGRAM_HP: "t.py", names.PS_ENABLED_HP: True, names.MPI_ENABLED_HP: "true"}, {})
    assert str(info.value) == ("hyperparameters.json: fields 'sagemaker_parameter_server_enabled' and "
                               "'sagemaker_mpi_enabled' are both true; a job distributes with one of them")
