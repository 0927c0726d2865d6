"""The pure choice of train()'s keyword arguments, from tables."""

import inspect

import pytest

from mx_training_toolkit.legacy import OFFERED, OFFERED_FROM_ENV, MissingArgumentError, offered_arguments, train_kwargs

OFFERED_VALUES = {name: "<%s>" % name for name in OFFERED}


def signature(source):
    namespace = {}
    exec("def train(%s): pass" % source, namespace)  # pylint: disable=exec-used
    return inspect.signature(namespace["train"])


@pytest.mark.parametrize("params, expected", [
    ("", []),
    ("hyperparameters, num_gpus, **kwargs", list(OFFERED)),
    ("**kwargs", list(OFFERED)),
    ("hyperparameters, input_data_config, channel_input_dirs, output_data_dir, model_dir, "
     "num_gpus, num_cpus, hosts, current_host", list(OFFERED)),
    ("hyperparameters, num_gpus", ["hyperparameters", "num_gpus"]),
    ("model_dir, hosts, current_host", ["model_dir", "hosts", "current_host"]),
    ("hyperparameters, epochs=10", ["hyperparameters"]),            # unknown but has a default
    ("*args, hyperparameters", ["hyperparameters"]),                # *args gets nothing
    ("*, num_cpus, model_dir=None", ["num_cpus", "model_dir"]),     # keyword-only
    ("num_gpus=4", ["num_gpus"]),                                   # offered beats the default
    ("hyperparameters=None, /, num_gpus=1", ["num_gpus"]),          # positional-only, defaulted
    ("hyperparameters=None, /, **kwargs", [n for n in OFFERED if n != "hyperparameters"]),
])
def test_passes_exactly_what_the_signature_names(params, expected):
    kwargs = train_kwargs(signature(params), OFFERED_VALUES)
    assert sorted(kwargs) == sorted(expected)
    assert all(kwargs[name] == OFFERED_VALUES[name] for name in kwargs)


def test_keeps_the_signatures_order_so_the_log_line_reads_naturally():
    kwargs = train_kwargs(signature("current_host, hyperparameters"), OFFERED_VALUES)
    assert list(kwargs) == ["current_host", "hyperparameters"]


@pytest.mark.parametrize("params, missing, words", [
    ("hyperparameters, foo", "foo", "requires parameter 'foo', which the container does not "
                                    "provide; it provides: " + ", ".join(OFFERED)),
    ("foo, **kwargs", "foo", "requires parameter 'foo'"),
    ("*, learning_rate", "learning_rate", "requires parameter 'learning_rate'"),
    ("hyperparameters, /", "hyperparameters", "requires positional-only parameter "
                                              "'hyperparameters'"),
])
def test_a_required_parameter_we_cannot_supply_is_named(params, missing, words):
    with pytest.raises(MissingArgumentError) as caught:
        train_kwargs(signature(params), OFFERED_VALUES, where="train() in my_script.py")
    message = str(caught.value)
    assert message.startswith("train() in my_script.py " + words.split(", which")[0])
    assert words in message and "'%s'" % missing in message


def test_offers_only_what_it_is_given():
    assert train_kwargs(signature("**kwargs"), {"model_dir": "/m"}) == {"model_dir": "/m"}


def test_pipe_mode_channels_have_no_input_dir_and_every_hyperparameter_is_offered():
    training_env = {key: "<%s>" % key for _, key in OFFERED_FROM_ENV}
    training_env.update(
        all_hyperparameters={"epochs": 2, "sagemaker_program": "t.py", "_ps_port": 8000},
        input_data_config={"train": {"TrainingInputMode": "File"}, "stream": {"TrainingInputMode": "Pipe"},
                           "eval": {}},
        channel_input_dirs={"train": "/ml/input/data/train", "stream": "/ml/input/data/stream",
                            "eval": "/ml/input/data/eval"})
    offered = offered_arguments(training_env)
    # As the original legacy container: a Pipe channel's data comes through FIFOs, not a directory.
    assert offered["channel_input_dirs"] == {"train": "/ml/input/data/train", "eval": "/ml/input/data/eval"}
    assert offered["hyperparameters"] == {"epochs": 2, "sagemaker_program": "t.py", "_ps_port": 8000}
    assert training_env["channel_input_dirs"]["stream"] == "/ml/input/data/stream"  # SM_TRAINING_ENV keeps it
