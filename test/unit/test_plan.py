import json

import pytest

from mx_training_toolkit import config
from mx_training_toolkit.code import UserCode
from mx_training_toolkit.plan import coordinator_port, plan_job, ps_env, uses_parameter_server
from mx_training_toolkit.supervisor import ProcessSpec

PY = "/usr/bin/python3"


def make_config(tmp_path, hosts=("algo-1",), current="algo-1", **hps):
    base = tmp_path / "ml"
    (base / "input" / "config").mkdir(parents=True)
    hps.setdefault("sagemaker_program", "train.py")
    (base / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({k: json.dumps(v) for k, v in hps.items()}))
    (base / "input" / "config" / "resourceconfig.json").write_text(
        json.dumps({"current_host": current, "hosts": list(hosts)}))
    return config.load(str(base), {})


def script(kind="script", target="train.py", args=("--epochs", "2")):
    return UserCode(kind, target, tuple(args), "test", False, False)


ADDRESSES = {"algo-1": "10.0.0.1", "algo-2": "10.0.0.2", "algo-3": "10.0.0.3"}


def test_plain_job_is_one_worker(tmp_path):
    cfg = make_config(tmp_path)
    plan = plan_job(cfg, {"A": "1"}, script(), {"algo-1": "127.0.0.1"}, PY)
    assert plan == plan_job(cfg, {"A": "1"}, script(), {"algo-1": "127.0.0.1"}, PY)  # pure: same in, same out
    assert not plan.parameter_server
    assert plan.specs == (ProcessSpec("worker", (PY, "train.py", "--epochs", "2"), {"A": "1"}, cfg.paths.code_dir),)


@pytest.mark.parametrize("current,roles", [("algo-1", ["scheduler", "server", "worker"]),
                                           ("algo-2", ["server", "worker"]),
                                           ("algo-3", ["server", "worker"])])
def test_parameter_server_roles_per_host(tmp_path, current, roles):
    cfg = make_config(tmp_path, ("algo-1", "algo-2", "algo-3"), current,
                      sagemaker_parameter_server_enabled=True, _ps_port=9000, _ps_verbose=1)
    plan = plan_job(cfg, {"A": "1"}, script(), ADDRESSES, PY, status_file="/tmp/st")
    assert [s.role for s in plan.specs] == roles
    for spec in plan.roles:
        assert spec.argv == (PY, "-c", "import mxnet")
        assert spec.prefix == "[{} {}] ".format(spec.role, current)
    worker = plan.worker
    assert worker.argv == (PY, "-m", "mx_training_toolkit.runner", "train.py", "--epochs", "2")
    assert worker.status_file == "/tmp/st"
    assert worker.env["MX_TRAINING_STATUS_FILE"] == "/tmp/st"
    for spec in plan.specs:
        assert spec.env["A"] == "1"
        assert spec.env["DMLC_ROLE"] == spec.role
        assert spec.env["DMLC_PS_ROOT_URI"] == "10.0.0.1"
        assert spec.env["DMLC_PS_ROOT_PORT"] == "9000"
        assert spec.env["DMLC_NUM_SERVER"] == spec.env["DMLC_NUM_WORKER"] == "3"
        assert spec.env["DMLC_NODE_HOST"] == ADDRESSES[current]
        assert spec.env["PS_VERBOSE"] == "1"


def test_ps_port_given_as_string_or_int(tmp_path):
    for value in (8123, "8123"):
        cfg = make_config(tmp_path / str(type(value).__name__), sagemaker_parameter_server_enabled=True,
                          _ps_port=value)
        assert ps_env(cfg, {"algo-1": "127.0.0.1"}, "server")["DMLC_PS_ROOT_PORT"] == "8123"
        assert coordinator_port(cfg) == 8124


@pytest.mark.parametrize("enabled,legacy,hosts,expected", [
    (False, False, 1, False), (False, False, 2, False), (True, False, 1, True),
    (False, True, 1, False), (False, True, 2, True), (True, True, 2, True)])
def test_uses_parameter_server(tmp_path, enabled, legacy, hosts, expected):
    names = tuple("algo-{}".format(i + 1) for i in range(hosts))
    cfg = make_config(tmp_path, names, sagemaker_parameter_server_enabled=enabled)
    assert uses_parameter_server(cfg, legacy) is expected


@pytest.mark.parametrize("code,record,argv", [
    (script(), False, (PY, "train.py", "--epochs", "2")),
    (script(), True, (PY, "-m", "mx_training_toolkit.runner", "train.py", "--epochs", "2")),
    (script("module", "pkg.train"), False, (PY, "-m", "pkg.train", "--epochs", "2")),
    (script("module", "pkg.train"), True, (PY, "-m", "mx_training_toolkit.runner", "--module", "pkg.train",
                                           "--epochs", "2")),
    (script("legacy"), True, (PY, "-m", "mx_training_toolkit.legacy")),
    (script("executable", "run.sh"), True, ("./run.sh", "--epochs", "2")),
])
def test_worker_argv(code, record, argv):
    assert code.argv(PY, record_status=record) == argv


@pytest.mark.parametrize("statuses,expected", [([], 0), ([1], 1), ([1, 137], 137), ([3, 1], 3), ([1, 1], 1),
                                               ([143, 3], 143)])
def test_local_job_status_prefers_the_root_cause(statuses, expected):
    from mx_training_toolkit.local import job_status
    assert job_status(statuses) == expected
