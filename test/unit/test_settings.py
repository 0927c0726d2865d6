"""The launcher's own settings (docs/contract.md section 7): defaults, and every unusable value refused."""

import pytest

from mx_training_toolkit import names, settings
from mx_training_toolkit.errors import ConfigError

GRACE, WAIT, LINGER = names.STOP_GRACE_ENV, names.HOST_WAIT_ENV, names.LINGER_ENV
FAILURE, S3, STALL = names.FAILURE_GRACE_ENV, names.S3_TIMEOUT_ENV, names.STALL_TIMEOUT_ENV
FIELDS = {GRACE: "stop_grace", FAILURE: "failure_grace", WAIT: "host_wait", LINGER: "linger", S3: "s3_timeout",
          STALL: "stall_timeout"}


def test_defaults_from_an_empty_environment():
    s = settings.from_environ({})
    assert s == settings.Settings()
    assert s == ("/opt/ml", 105.0, 10.0, 300.0, 3.0, {}, None, None, None, None)
    assert (s.stop_grace, s.failure_grace, s.host_wait, s.linger) == (105.0, 10.0, 300.0, 3.0)
    assert s.base_dir == "/opt/ml" and s.address_map == {}
    assert (s.s3_timeout, s.s3_endpoint, s.channel_secret) == (None, None, None)
    assert s.stall_timeout is None  # the stall watchdog is off


def test_the_stop_grace_leaves_the_launchers_time_within_the_platforms_window():
    # The platform SIGKILLs 120 s after its SIGTERM; the launchers need the rest (docs/contract.md).
    assert settings.PLATFORM_STOP_WINDOW == 120.0
    assert 100.0 <= settings.DEFAULT_STOP_GRACE <= settings.PLATFORM_STOP_WINDOW - 10.0
    assert settings.DEFAULT_FAILURE_GRACE == 10.0


def test_every_setting_from_the_environment():
    s = settings.from_environ({"SAGEMAKER_BASE_DIR": "/job", GRACE: "2.5", FAILURE: "1", WAIT: "600", LINGER: "0",
                               "MX_TRAINING_HOST_ADDRESSES": '{"algo-1": "127.0.0.2"}', S3: "7.5",
                               "S3_ENDPOINT_URL": "http://s3:9000", "MX_TRAINING_CHANNEL_SECRET": "shared"})
    assert s == settings.Settings(base_dir="/job", stop_grace=2.5, failure_grace=1.0, host_wait=600.0, linger=0.0,
                                  address_map={"algo-1": "127.0.0.2"}, s3_timeout=7.5, s3_endpoint="http://s3:9000",
                                  channel_secret="shared")


def test_the_variable_names():
    assert (GRACE, FAILURE, WAIT, LINGER, S3, STALL) == (
        "MX_TRAINING_STOP_GRACE_SECONDS", "MX_TRAINING_FAILURE_GRACE_SECONDS", "MX_TRAINING_HOST_WAIT_SECONDS",
        "MX_TRAINING_PS_LINGER_SECONDS", "MX_TRAINING_S3_TIMEOUT_SECONDS", "MX_TRAINING_STALL_TIMEOUT_SECONDS")
    assert [d.variable for d in settings.DURATIONS] == [GRACE, FAILURE, WAIT, LINGER, S3, STALL]


@pytest.mark.parametrize("name, text, expected", [
    (GRACE, "", 105.0),  # empty is unset
    (GRACE, "   ", 105.0),
    (FAILURE, "", 10.0),
    (FAILURE, "0", 0.0),
    (FAILURE, "2.5", 2.5),
    (FAILURE, "86400", 86400.0),
    (GRACE, "0", 0.0),
    (GRACE, "-0", 0.0),
    (GRACE, " 3 ", 3.0),
    (GRACE, "0.25", 0.25),
    (GRACE, "86400", 86400.0),  # the largest grace
    (LINGER, "86400", 86400.0),
    (LINGER, "0", 0.0),
    (WAIT, "604800", 604800.0),  # a week of waiting for hosts
    (WAIT, "1e5", 100000.0),
    (S3, "", None),  # unset: the download's own defaults (10 s to connect, 30 s per reply)
    (S3, "0.25", 0.25),
    (S3, "86400", 86400.0),
    (STALL, "", None),  # unset: the stall watchdog is off
    (STALL, "0", None),  # and so is 0
    (STALL, "-0", None),
    (STALL, "0.5", 0.5),
    (STALL, "1800", 1800.0),
    (STALL, "604800", 604800.0),  # a week
])
def test_accepted_values(name, text, expected):
    value = getattr(settings.from_environ({name: text}), FIELDS[name])
    assert value == expected and isinstance(value, (float, type(None)))
    assert str(value) != "-0.0"


DAY, WEEK = "between 0 and 86400", "between 0 and 604800"

# (variable, value, the whole message)
REFUSED = [
    (GRACE, "inf", "MX_TRAINING_STOP_GRACE_SECONDS='inf': expected a number of seconds between 0 and 86400"),
    (GRACE, "-inf", None),
    (GRACE, "Infinity", None),
    (GRACE, "nan", None),
    (GRACE, "NaN", None),
    (GRACE, "-5", "MX_TRAINING_STOP_GRACE_SECONDS='-5': expected a number of seconds between 0 and 86400"),
    (GRACE, "-0.001", None),
    (GRACE, "86400.5", None),
    (GRACE, "1e400", None),  # float() gives inf
    (GRACE, "ten", "MX_TRAINING_STOP_GRACE_SECONDS='ten': expected a number of seconds between 0 and 86400"),
    (GRACE, "10s", None),
    (GRACE, "0x10", None),
    (GRACE, "1,5", None),
    (FAILURE, "inf", "MX_TRAINING_FAILURE_GRACE_SECONDS='inf': expected a number of seconds between 0 and 86400"),
    (FAILURE, "-1", None),
    (FAILURE, "nan", None),
    (FAILURE, "86401", None),
    (FAILURE, "10s", None),
    (WAIT, "inf", "MX_TRAINING_HOST_WAIT_SECONDS='inf': expected a number of seconds between 0 and 604800"),
    (WAIT, "604801", None),
    (WAIT, "-1", None),
    (LINGER, "nan", "MX_TRAINING_PS_LINGER_SECONDS='nan': expected a number of seconds between 0 and 86400"),
    (LINGER, "100000", None),
    (LINGER, "-5", "MX_TRAINING_PS_LINGER_SECONDS='-5': expected a number of seconds between 0 and 86400"),
    (LINGER, "inf", None),
    (LINGER, "1e9", None),
    (S3, "0", "MX_TRAINING_S3_TIMEOUT_SECONDS='0': expected a number of seconds above 0 and at most 86400"),
    (S3, "-0", None),
    (S3, "-1", None),
    (S3, "soon", "MX_TRAINING_S3_TIMEOUT_SECONDS='soon': expected a number of seconds above 0 and at most 86400"),
    (S3, "nan", None),
    (S3, "inf", None),
    (S3, "86401", None),
    (STALL, "-1", "MX_TRAINING_STALL_TIMEOUT_SECONDS='-1': expected a number of seconds between 0 and 604800"),
    (STALL, "30m", None),
    (STALL, "nan", None),
    (STALL, "inf", None),
    (STALL, "604801", None),
]


@pytest.mark.parametrize("name, text, message", REFUSED, ids=["{}={}".format(n[12:], t) for n, t, _ in REFUSED])
def test_refused_values_name_the_variable_the_value_and_the_range(name, text, message):
    with pytest.raises(ConfigError) as info:
        settings.from_environ({name: text})
    first = str(info.value)
    assert first.startswith("{}={!r}: expected a number of seconds ".format(name, text))
    assert first.endswith({WAIT: WEEK, STALL: WEEK, S3: "above 0 and at most 86400"}.get(name, DAY))
    if message is not None:
        assert first == message
    assert info.value.step == "configuration" and info.value.exit_code == 2


def test_a_long_value_is_shortened_in_the_message():
    with pytest.raises(ConfigError) as info:
        settings.from_environ({GRACE: "9" * 500})
    assert len(str(info.value)) < 160 and "..." in str(info.value)


@pytest.mark.parametrize("text", ["{", "[]", '{"a": 1}'])
def test_a_bad_address_map_is_a_config_error(text):
    with pytest.raises(ConfigError, match="MX_TRAINING_HOST_ADDRESSES"):
        settings.from_environ({"MX_TRAINING_HOST_ADDRESSES": text})


def test_settings_are_immutable():
    s = settings.from_environ({})
    with pytest.raises(AttributeError):
        s.stop_grace = 1.0
    with pytest.raises(TypeError):
        s.address_map["algo-1"] = "10.0.0.1"


OURS, AWS_S3, AWS_ANY, IGNORE = (names.S3_ENDPOINT_ENV, names.AWS_S3_ENDPOINT_ENV, names.AWS_ENDPOINT_ENV,
                                 names.AWS_IGNORE_ENDPOINTS_ENV)


@pytest.mark.parametrize("environ, expected", [
    ({}, None),  # AWS's own endpoint for the region
    ({OURS: "http://ours:9000"}, "http://ours:9000"),
    ({AWS_S3: "http://sdk:9000"}, "http://sdk:9000"),  # what SDK local mode sets
    ({AWS_ANY: "http://any:9000"}, "http://any:9000"),
    ({OURS: "http://ours:9000", AWS_S3: "http://sdk:9000", AWS_ANY: "http://any:9000"}, "http://ours:9000"),
    ({AWS_S3: "http://sdk:9000", AWS_ANY: "http://any:9000"}, "http://sdk:9000"),
    ({OURS: "", AWS_S3: "http://sdk:9000"}, "http://sdk:9000"),  # empty is unset
    ({OURS: "  ", AWS_S3: " ", AWS_ANY: "http://any:9000"}, "http://any:9000"),
    ({AWS_S3: "http://sdk:9000", IGNORE: "true"}, None),  # botocore's switch for the AWS variables
    ({AWS_S3: "http://sdk:9000", IGNORE: "TRUE"}, None),
    ({AWS_S3: "http://sdk:9000", IGNORE: "false"}, "http://sdk:9000"),
    ({OURS: "http://ours:9000", IGNORE: "true"}, "http://ours:9000"),  # ours is not an AWS variable
])
def test_the_s3_endpoint_and_its_precedence(environ, expected):
    assert settings.s3_endpoint(environ) == expected
    assert settings.from_environ(environ).s3_endpoint == expected


def test_the_s3_endpoint_variable_names():
    assert (OURS, AWS_S3, AWS_ANY, IGNORE) == ("S3_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL",
                                               "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")


@pytest.mark.parametrize("environ, expected", [
    ({}, None),  # derived from the job's hyperparameters (messages.job_secret)
    ({"MX_TRAINING_CHANNEL_SECRET": ""}, None),  # empty is unset
    ({"MX_TRAINING_CHANNEL_SECRET": "s3cr3t"}, "s3cr3t"),
    ({"MX_TRAINING_CHANNEL_SECRET": " spaces count "}, " spaces count "),  # a key, taken as it is
])
def test_the_channel_secret(environ, expected):
    assert settings.from_environ(environ).channel_secret == expected


def test_a_printed_record_never_shows_the_channel_secret():
    s = settings.from_environ({"MX_TRAINING_CHANNEL_SECRET": "s3cr3t"})
    assert "s3cr3t" not in repr(s) and "channel_secret='****'" in repr(s)
    assert repr(settings.Settings()).startswith("Settings(base_dir='/opt/ml', stop_grace=105.0")
