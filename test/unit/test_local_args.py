"""``mx-train``'s arguments: checked before any host starts."""

import json
import os

import pytest

from mx_training_toolkit import local


def _error(capsys, argv):
    """Parse ``argv``, which must fail -> (exit status, the last line of stderr)."""
    with pytest.raises(SystemExit) as info:
        local.parse_args(argv)
    return info.value.code, capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("argv, line", [
    (["--host", "2"], "mx-train: error: unrecognized arguments: --host 2"),  # no abbreviations
    (["--param", "--hosts", "2"], "mx-train: error: unrecognized arguments: --param"),
    (["--code", "./missing"], "mx-train: error: --code ./missing: no such directory or file"),
    (["--group", "a=2", "--group", "a=1"], "mx-train: error: --group a: the group is given twice"),
    (["--group", "a=0"], "mx-train: error: --group a=0: COUNT must be a whole number of hosts, at least 1"),
    (["--group", "a=two"], "mx-train: error: --group a=two: COUNT must be a whole number of hosts, at least 1"),
    (["--group", "a=2", "--group", "b=1", "--hosts", "2"],
     "mx-train: error: --hosts 2 does not match the --group counts, which add up to 3"),
])
def test_bad_arguments_exit_2_before_anything_starts(capsys, argv, line):
    assert _error(capsys, argv) == (2, line)


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit) as info:
        local.parse_args(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert "``" not in out
    assert "mx-train: run a training job on this machine, on one host or on N emulated" in out


def test_an_existing_code_directory_is_accepted(tmp_path):
    args = local.parse_args(["--code", str(tmp_path), "--hosts", "2"])
    assert (args.code, args.hosts, args.groups) == (str(tmp_path), 2, {})
    assert local.parse_args([]).hosts == 1


def test_groups_number_their_hosts_group_by_group(tmp_path):
    args = local.parse_args(["--group", "train1=2", "--group", "data=1"])
    assert (args.hosts, args.groups) == (3, {"train1": 2, "data": 1})
    groups = local.group_hosts(args.groups)
    assert groups == {"train1": ["algo-1", "algo-2"], "data": ["algo-3"]}
    local.write_host(str(tmp_path / "algo-3"), "algo-3", local.host_names(3), {"sagemaker_program": "t.py"}, {},
                     groups)
    with open(os.path.join(tmp_path, "algo-3", "input", "config", "resourceconfig.json")) as f:
        resource = json.load(f)
    assert resource["current_group_name"] == "data" and resource["current_host"] == "algo-3"
    assert resource["hosts"] == ["algo-1", "algo-2", "algo-3"]
    assert resource["instance_groups"] == [
        {"instance_group_name": "train1", "instance_type": "local", "hosts": ["algo-1", "algo-2"]},
        {"instance_group_name": "data", "instance_type": "local", "hosts": ["algo-3"]}]


def test_a_base_dir_that_is_a_file_is_a_usage_error(capsys, tmp_path):
    (tmp_path / "f").write_text("mine")
    assert _error(capsys, ["--base-dir", str(tmp_path / "f")]) == (
        2, "mx-train: error: --base-dir {}: not a directory".format(tmp_path / "f"))
    assert (tmp_path / "f").read_text() == "mine"


def test_a_relative_base_dir_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert local.parse_args(["--base-dir", "runs/one"]).base_dir == str(tmp_path / "runs" / "one")


@pytest.mark.parametrize("environ,limits", [
    ({}, (120.0, 120.0)),  # as the platform: SIGKILL 120 s after the stop
    ({"MX_TRAINING_STOP_GRACE_SECONDS": "5"}, (20.0, 25.0)),  # the failure grace, 10 s, is then the larger
    ({"MX_TRAINING_STOP_GRACE_SECONDS": "300", "MX_TRAINING_FAILURE_GRACE_SECONDS": "1"}, (315.0, 315.0)),
    ({"MX_TRAINING_FAILURE_GRACE_SECONDS": "200"}, (120.0, 215.0)),
    ({"MX_TRAINING_STOP_GRACE_SECONDS": "inf"}, (120.0, 120.0)),  # the launchers report it; mx-train waits as by default
])
def test_mx_train_waits_longer_than_its_launchers_graces(environ, limits):
    assert local.launcher_limits(environ) == limits


@pytest.mark.parametrize("state,statuses,signum,status", [
    ("succeeded", (), 0, 0),
    ("failed", (3, 1), 0, 3),  # the first launcher to fail: the root cause's status, which every launcher exits with
    ("failed", (3,), 2, 130),  # a Ctrl-C while the others were still ending
    ("stopped", (), 15, 143),
])
def test_mx_trains_status_is_decided_as_a_hosts(state, statuses, signum, status):
    from mx_training_toolkit.jobstate import JobPolicy, JobState
    from mx_training_toolkit.outcome import JobResult

    policy = JobPolicy("local")
    policy.state = JobState(state)
    policy.results = [JobResult("worker", "local", s, rank=i) for i, s in enumerate(statuses)]
    assert local.exit_status(policy, signum) == status
