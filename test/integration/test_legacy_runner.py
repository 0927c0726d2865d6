"""``python -m mx_training_toolkit.legacy`` as a real subprocess, against tiny scripts."""

import collections
import json
import os
import shutil
import subprocess
import sys

import pytest

from mx_training_toolkit.runner import STATUS_FILE_ENV, read_status

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # mxnet's, on import
              pytest.mark.filterwarnings("ignore:Cannot decide type:UserWarning")]  # imports()

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(REPO, "src")
SCRIPTS = os.path.join(REPO, "test", "resources", "legacy")
PREFIX = "mx_training_toolkit.legacy: "
ALL_NAMES = ("hyperparameters, input_data_config, channel_input_dirs, output_data_dir, "
             "model_dir, num_gpus, num_cpus, hosts, current_host")

# recorded: the (status, reason) the runner recorded in the launcher's status file, or None
Result = collections.namedtuple("Result", "returncode stdout stderr model_dir output_dir recorded")


def run_legacy(tmp_path, script, hyperparameters=None, current_host="algo-1", hosts=("algo-1",),
               model_dir=None):
    """Run the legacy runner on ``test/resources/legacy/<script>.py`` the way the launcher does."""
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    shutil.copy(os.path.join(SCRIPTS, script + ".py"), str(code_dir))
    output_dir = tmp_path / "output" / "data"
    output_dir.mkdir(parents=True)
    (tmp_path / "input" / "data" / "train").mkdir(parents=True)
    if model_dir is None:
        model_dir = tmp_path / "model"
        model_dir.mkdir()
    user = dict({"epochs": 1, "learning_rate": 0.1}, **(hyperparameters or {}))
    training_env = {
        "all_hyperparameters": dict(user, sagemaker_program=script + ".py"),
        "hyperparameters": user,
        "input_data_config": {"train": {"TrainingInputMode": "File"}},
        "channel_input_dirs": {"train": str(tmp_path / "input" / "data" / "train")},
        "output_data_dir": str(output_dir),
        "model_dir": str(model_dir),
        "num_gpus": 0,
        "num_cpus": 2,
        "hosts": list(hosts),
        "current_host": current_host,
        "module_name": script,
        "user_entry_point": script + ".py",
    }
    env = {key: value for key, value in os.environ.items() if not key.startswith("SM_")}
    status_file = tmp_path / "worker-status"
    env.update(SM_TRAINING_ENV=json.dumps(training_env), SM_MODULE_NAME=script,
               PYTHONPATH=os.pathsep.join([str(code_dir), SRC]))
    env[STATUS_FILE_ENV] = str(status_file)
    done = subprocess.run([sys.executable, "-m", "mx_training_toolkit.legacy"], cwd=str(code_dir),
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    return Result(done.returncode, done.stdout, done.stderr, str(model_dir), str(output_dir),
                  read_status(str(status_file)))


def last_line(text):
    return text.rstrip("\n").splitlines()[-1]


def assert_failed_with(result, summary):
    """Exit status 1; the status file has the reason, and stderr ends with it after the prefix."""
    assert result.returncode == 1
    status, reason = result.recorded
    assert status == 1
    assert reason.startswith(summary)
    assert last_line(result.stderr) == PREFIX + reason  # the same words, for the job's log


def read_json(directory, name):
    with open(os.path.join(directory, name)) as stream:
        return json.load(stream)


def test_kwargs_signature_gets_everything_and_none_saves_nothing(tmp_path):
    result = run_legacy(tmp_path, "kwargs_train")
    assert result.returncode == 0, result.stderr
    assert result.recorded == (0, "")
    received = read_json(result.output_dir, "received.json")
    assert sorted(received) == sorted(ALL_NAMES.split(", "))
    assert received["hyperparameters"] == {"epochs": 1, "learning_rate": 0.1,
                                           "sagemaker_program": "kwargs_train.py"}
    assert received["hosts"] == ["algo-1"] and received["num_gpus"] == 0
    assert "legacy mode: calling train(%s)" % ALL_NAMES in result.stdout
    assert "train() returned None, so nothing is saved" in result.stdout
    assert os.listdir(result.model_dir) == []


def test_exact_subset_signature_gets_only_what_it_names(tmp_path):
    result = run_legacy(tmp_path, "subset_train")
    assert result.returncode == 0, result.stderr
    received = read_json(result.output_dir, "received.json")
    assert received["verbose"] is False  # not offered, so its default stays
    assert received["model_dir"] == result.model_dir
    assert ("legacy mode: calling train(hyperparameters, channel_input_dirs, model_dir, "
            "output_data_dir)") in result.stdout


def test_scripts_own_save_is_called_with_the_model(tmp_path):
    result = run_legacy(tmp_path, "own_save", {"epochs": 4})
    assert result.returncode == 0, result.stderr
    assert read_json(result.model_dir, "own.json") == {"weights": [1, 2, 3], "epochs": 4}
    assert "calling save(model, model_dir) from own_save.py" in result.stdout


@pytest.mark.parametrize("script, summary, in_traceback", [
    ("raising_train", "train() in raising_train.py raised ValueError: bad learning rate 5",
     ['raising_train.py", line 6, in _check']),
    ("raising_save", "save() in raising_save.py raised RuntimeError: cannot reach the model store",
     ['raising_save.py", line 9, in save']),
    ("import_error", "importing import_error.py failed: json.decoder.JSONDecodeError: Expecting property name",
     ['import_error.py", line 4, in <module>']),
])
def test_user_errors_show_the_users_traceback_then_one_summary_line(tmp_path, script, summary,
                                                                     in_traceback):
    result = run_legacy(tmp_path, script, {"learning_rate": 5})
    assert_failed_with(result, summary)
    assert result.stderr.startswith("Traceback (most recent call last):")
    for text in in_traceback:
        assert text in result.stderr
    assert "legacy.py" not in result.stderr and "importlib" not in result.stderr  # only theirs


@pytest.mark.parametrize("script, summary", [
    ("needs_foo", "train() in needs_foo.py requires parameter 'foo', which the container does "
                  "not provide; it provides: " + ALL_NAMES),
    ("no_train", "no_train.py defines no train() function"),
    ("unsupported", "cannot save dict with the default serializer, which writes MXNet Modules "
                    "and Gluon HybridBlocks; define save(model, model_dir) in your script"),
])
def test_container_side_errors_are_one_clear_line(tmp_path, script, summary):
    result = run_legacy(tmp_path, script)
    assert_failed_with(result, summary)
    assert "Traceback" not in result.stderr
    assert os.listdir(result.model_dir) == []


@pytest.mark.parametrize("code", [0, 3])
def test_sys_exit_in_train_keeps_the_users_status(tmp_path, code):
    result = run_legacy(tmp_path, "exits", {"exit_code": code})
    assert result.returncode == code
    assert result.recorded == (code, "")
    assert "about to exit" in result.stdout
    assert PREFIX not in result.stderr


def test_model_dir_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    result = run_legacy(tmp_path, "disk_full", model_dir=blocker / "model")
    assert_failed_with(result, "cannot write the model to %s: " % (blocker / "model"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_model_dir_gets_nothing(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    model_dir.chmod(0o555)
    try:
        result = run_legacy(tmp_path, "disk_full", model_dir=model_dir)
    finally:
        model_dir.chmod(0o755)
    assert_failed_with(result, "cannot write the model to %s: " % model_dir)
    assert os.listdir(str(model_dir)) == []


def test_failure_while_writing_leaves_nothing_half_written(tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model-symbol.json").write_text("an earlier model")
    result = run_legacy(tmp_path, "disk_full", model_dir=model_dir)
    assert_failed_with(result, "cannot write the model to %s: " % model_dir)
    assert "No space left on device" in result.recorded[1]
    assert os.listdir(str(model_dir)) == ["model-symbol.json"]
    assert (model_dir / "model-symbol.json").read_text() == "an earlier model"


def test_module_round_trip_through_the_default_save(tmp_path):
    import mxnet as mx
    import numpy as np

    result = run_legacy(tmp_path, "module_train", {"epochs": 2})
    assert result.returncode == 0, result.stderr
    assert "saving the Module returned by train() with the default serializer" in result.stdout
    assert sorted(os.listdir(result.model_dir)) == [
        "model-0000.params", "model-shapes.json", "model-symbol.json"]
    shapes = read_json(result.model_dir, "model-shapes.json")
    assert shapes == [{"name": "data", "shape": [16, 5]}]

    symbol, arg_params, aux_params = mx.model.load_checkpoint(
        os.path.join(result.model_dir, "model"), 0)
    assert sorted(arg_params) == ["fc1_bias", "fc1_weight", "fc2_bias", "fc2_weight"]
    module = mx.mod.Module(symbol, data_names=[s["name"] for s in shapes], label_names=None)
    module.bind(for_training=False, data_shapes=[(s["name"], s["shape"]) for s in shapes])
    module.set_params(arg_params, aux_params, allow_missing=True)
    inputs = np.load(os.path.join(result.output_dir, "inputs.npy"))
    predictions = module.predict(mx.io.NDArrayIter(inputs, batch_size=16)).asnumpy()
    np.testing.assert_allclose(predictions, np.load(os.path.join(result.output_dir,
                                                                 "predictions.npy")), rtol=1e-6)


def test_gluon_block_round_trip_through_the_default_save(tmp_path):
    import numpy as np
    from mxnet import gluon, nd

    result = run_legacy(tmp_path, "gluon_train")
    assert result.returncode == 0, result.stderr
    assert read_json(result.model_dir, "model-shapes.json") == [{"name": "data", "shape": [10, 5]}]
    block = gluon.SymbolBlock.imports(os.path.join(result.model_dir, "model-symbol.json"), ["data"],
                                      os.path.join(result.model_dir, "model-0000.params"))
    inputs = np.load(os.path.join(result.output_dir, "inputs.npy"))
    np.testing.assert_allclose(block(nd.array(inputs)).asnumpy(),
                               np.load(os.path.join(result.output_dir, "predictions.npy")),
                               rtol=1e-5)


def test_gluon_block_with_unrecorded_shapes_says_what_to_do(tmp_path):
    result = run_legacy(tmp_path, "gluon_lazy_mxnet")
    assert_failed_with(result, "cannot save mxnet.gluon.nn.basic_layers.HybridSequential:")
    assert "define save(model, model_dir)" in result.recorded[1]
    assert os.listdir(result.model_dir) == []


def test_default_save_writes_only_on_the_scheduler_host(tmp_path):
    # disk_full's Module fails when written: here it must not even be tried
    result = run_legacy(tmp_path, "disk_full", current_host="algo-2", hosts=("algo-1", "algo-2"))
    assert result.returncode == 0, result.stderr
    assert result.recorded == (0, "")
    assert os.listdir(result.model_dir) == []
    assert "algo-2 is not the scheduler host (algo-1)" in result.stdout


def test_an_async_train_and_save_are_run_to_their_end(tmp_path):
    """They were called but never awaited: save() got a coroutine object and the job succeeded."""
    result = run_legacy(tmp_path, "async_train", {"epochs": 5})
    assert (result.returncode, result.recorded) == (0, (0, "")), result.stderr
    assert read_json(result.model_dir, "async.json") == {"epochs": 5}
    assert "never awaited" not in result.stderr
