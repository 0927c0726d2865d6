"""The default serializer, in process, with real MXNet objects (those tests skip where MXNet is not
installed, except in CI, which installs it)."""

import errno
import json
import os
import subprocess
import sys

import pytest

from mx_training_toolkit import training_utils
from mx_training_toolkit.training_utils import (ModelNotReadyError, UnsupportedModelError, save,
                                                scheduler_host)

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # mxnet's, on import
              pytest.mark.filterwarnings("ignore:Cannot decide type:UserWarning")]  # imports()

THREE_FILES = ["model-0000.params", "model-shapes.json", "model-symbol.json"]


def mxnet():
    """The mxnet module; the test is skipped without it, but not in CI (CI=true), where it must be there."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        import mxnet as mx

        return mx
    return pytest.importorskip("mxnet")


@pytest.fixture(autouse=True)
def no_host_environment(monkeypatch):
    monkeypatch.delenv(training_utils.ENV_CURRENT_HOST, raising=False)
    monkeypatch.delenv(training_utils.ENV_HOSTS, raising=False)


def small_module(cls=None, batch=4):
    mx = mxnet()

    data = mx.sym.var("data")
    net = mx.sym.BatchNorm(mx.sym.FullyConnected(data, num_hidden=2, name="fc"), name="bn")
    module = (cls or mx.mod.Module)(net, data_names=["data"], label_names=None)
    module.bind(data_shapes=[("data", (batch, 3))], for_training=False)
    module.init_params()
    return module


def hybrid_net(run_shape=(5, 3)):
    mx = mxnet()
    gluon = mx.gluon

    training_utils.remember_gluon_input_shapes()
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(4, activation="relu"), gluon.nn.Dense(2))
    net.initialize()
    net.hybridize()
    if run_shape:
        net(mx.nd.ones(run_shape))
    return net


@pytest.mark.parametrize("hosts, expected", [
    (["algo-1"], "algo-1"),
    (["algo-2", "algo-1"], "algo-2"),
    (("a", "b", "c"), "a"),
])
def test_scheduler_host_is_the_first_host(hosts, expected):
    assert scheduler_host(hosts) == expected


def test_scheduler_host_of_no_hosts_is_an_error():
    with pytest.raises(ValueError, match="hosts is empty"):
        scheduler_host([])


def test_all_import_paths_give_the_same_functions():
    from sagemaker_mxnet_container.training_utils import save as container_save
    from sagemaker_mxnet_container.training_utils import scheduler_host as container_host
    from sagemaker_mxnet_training.training_utils import save as training_save
    from sagemaker_mxnet_training.training_utils import scheduler_host as training_host

    assert container_save is training_save is save
    assert container_host is training_host is scheduler_host


def test_importing_does_not_import_mxnet():
    code = ("import sys, mx_training_toolkit.training_utils, mx_training_toolkit.legacy, "
            "sagemaker_mxnet_container.training_utils, sagemaker_mxnet_training.training_utils; "
            "print(sorted(m for m in ('mxnet', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, check=True,
                         universal_newlines=True).stdout
    assert out.strip() == "[]"


def test_module_is_written_as_a_loadable_checkpoint(tmp_path):
    mx = mxnet()

    module = small_module(batch=4)
    written = save(str(tmp_path), module)
    assert written == [str(tmp_path / name) for name in
                       ("model-0000.params", "model-symbol.json", "model-shapes.json")]
    assert sorted(os.listdir(str(tmp_path))) == THREE_FILES
    assert json.loads((tmp_path / "model-shapes.json").read_text()) == [
        {"name": "data", "shape": [4, 3]}]
    symbol, args, auxs = mx.model.load_checkpoint(str(tmp_path / "model"), 0)
    assert symbol.tojson() == module.symbol.tojson()
    assert sorted(args) == ["bn_beta", "bn_gamma", "fc_bias", "fc_weight"]
    assert sorted(auxs) == ["bn_moving_mean", "bn_moving_var"]


def test_missing_model_dir_is_created(tmp_path):
    save(str(tmp_path / "a" / "model"), small_module())
    assert sorted(os.listdir(str(tmp_path / "a" / "model"))) == THREE_FILES


@pytest.mark.parametrize("current_host, hosts, env, writes", [
    ("algo-1", ["algo-1", "algo-2"], {}, True),
    ("algo-2", ["algo-1", "algo-2"], {}, False),
    (None, None, {}, True),                                        # nothing known: single host
    (None, None, {"SM_CURRENT_HOST": "algo-2", "SM_HOSTS": '["algo-1", "algo-2"]'}, False),
    (None, None, {"SM_CURRENT_HOST": "algo-1", "SM_HOSTS": '["algo-1", "algo-2"]'}, True),
    ("algo-1", None, {"SM_HOSTS": '["algo-2", "algo-1"]'}, False),  # arguments and env combine
    ("algo-2", None, {}, True),                                    # hosts unknown: single host
])
def test_only_the_scheduler_host_writes(tmp_path, monkeypatch, current_host, hosts, env, writes):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    written = save(str(tmp_path), small_module(), current_host, hosts)
    assert bool(written) == writes
    assert sorted(os.listdir(str(tmp_path))) == (THREE_FILES if writes else [])


def test_hosts_variable_that_is_not_a_json_list_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("SM_HOSTS", "algo-1,algo-2")
    with pytest.raises(ValueError, match="SM_HOSTS is not a JSON list"):
        save(str(tmp_path), small_module())


def test_failure_in_the_middle_leaves_no_partial_files(tmp_path):
    mx = mxnet()

    class DiskFullModule(mx.mod.Module):
        def save_params(self, fname):  # the symbol is already written when this fails
            with open(fname, "wb") as stream:
                stream.write(b"\x00" * 64)
            raise OSError(errno.ENOSPC, "No space left on device", fname)

    (tmp_path / "model-0000.params").write_bytes(b"an earlier model")
    with pytest.raises(OSError, match="No space left"):
        save(str(tmp_path), small_module(DiskFullModule))
    assert os.listdir(str(tmp_path)) == ["model-0000.params"]
    assert (tmp_path / "model-0000.params").read_bytes() == b"an earlier model"


@pytest.mark.parametrize("model, words", [
    ({"weights": [1]}, "cannot save dict with the default serializer"),
    ([1, 2], "cannot save list with the default serializer"),
    (object(), "cannot save object with the default serializer"),
])
def test_other_objects_are_refused_by_type(tmp_path, model, words):
    with pytest.raises(UnsupportedModelError) as caught:
        save(str(tmp_path / "model"), model)
    assert isinstance(caught.value, TypeError)
    assert words in str(caught.value) and "define save(model, model_dir)" in str(caught.value)
    assert not (tmp_path / "model").exists()


def test_plain_gluon_block_is_refused(tmp_path):
    gluon = mxnet().gluon

    with pytest.raises(UnsupportedModelError, match="not a HybridBlock"):
        save(str(tmp_path), gluon.nn.Sequential())


def test_unbound_module_is_not_ready(tmp_path):
    mx = mxnet()

    with pytest.raises(ModelNotReadyError, match="must be bound"):
        save(str(tmp_path), mx.mod.Module(mx.sym.var("data"), label_names=None))


def test_block_never_run_after_hybridize_is_not_ready(tmp_path):
    with pytest.raises(ModelNotReadyError, match=r"call net.hybridize\(\), then run it once"):
        save(str(tmp_path), hybrid_net(run_shape=None))
    assert os.listdir(str(tmp_path)) == []


def test_block_is_exported_with_the_shapes_of_its_last_call(tmp_path):
    mx = mxnet()
    gluon = mx.gluon

    net = hybrid_net(run_shape=(5, 3))
    x = mx.nd.random.uniform(shape=(7, 3))
    expected = net(x).asnumpy()
    save(str(tmp_path), net)
    assert sorted(os.listdir(str(tmp_path))) == THREE_FILES
    assert json.loads((tmp_path / "model-shapes.json").read_text()) == [
        {"name": "data", "shape": [7, 3]}]
    loaded = gluon.SymbolBlock.imports(str(tmp_path / "model-symbol.json"), ["data"],
                                       str(tmp_path / "model-0000.params"))
    assert (loaded(x).asnumpy() == expected).all()


def test_block_with_unrecorded_shapes_needs_data_shapes(tmp_path):
    net = hybrid_net()
    vars(net).pop(training_utils._SHAPES_ATTR)  # as if run before the recorder was installed
    with pytest.raises(ModelNotReadyError, match=r"inputs \(data\) in its last call were not"):
        save(str(tmp_path), net)
    save(str(tmp_path), net, data_shapes=[("data", (2, 3))])
    assert json.loads((tmp_path / "model-shapes.json").read_text()) == [
        {"name": "data", "shape": [2, 3]}]


def test_block_with_two_inputs_names_them_as_export_does(tmp_path):
    mx = mxnet()
    gluon = mx.gluon

    class Pair(gluon.HybridBlock):
        def __init__(self):
            super().__init__()
            with self.name_scope():
                self.dense = gluon.nn.Dense(2)

        def hybrid_forward(self, F, x, y):  # pylint: disable=arguments-differ
            return self.dense(F.concat(x, y, dim=1))

    training_utils.remember_gluon_input_shapes()
    net = Pair()
    net.initialize()
    net.hybridize()
    x, y = mx.nd.ones((3, 2)), mx.nd.zeros((3, 4))
    expected = net(x, y).asnumpy()
    save(str(tmp_path), net)
    assert json.loads((tmp_path / "model-shapes.json").read_text()) == [
        {"name": "data0", "shape": [3, 2]}, {"name": "data1", "shape": [3, 4]}]
    loaded = gluon.SymbolBlock.imports(str(tmp_path / "model-symbol.json"), ["data0", "data1"],
                                       str(tmp_path / "model-0000.params"))
    assert (loaded(x, y).asnumpy() == expected).all()


def test_heartbeat_touches_the_file_the_launcher_names(tmp_path, monkeypatch):
    beat = tmp_path / "heartbeat"
    monkeypatch.delenv("MX_TRAINING_HEARTBEAT_FILE", raising=False)
    assert training_utils.heartbeat() is False  # no watchdog: nothing to do
    monkeypatch.setenv("MX_TRAINING_HEARTBEAT_FILE", str(beat))
    assert training_utils.heartbeat() is True and beat.exists()  # made on the first call
    os.utime(beat, (1.0, 1.0))
    assert training_utils.heartbeat() is True and beat.stat().st_mtime > 1.0
    monkeypatch.setenv("MX_TRAINING_HEARTBEAT_FILE", str(tmp_path / "gone" / "heartbeat"))
    assert training_utils.heartbeat() is False  # never raises
