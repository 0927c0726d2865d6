"""For user scripts: the default model serializer, the scheduler host, and the stall watchdog's heartbeat.

``save(model_dir, model)`` writes the three files a serving container loads:
``model-symbol.json``, ``model-0000.params`` (checkpoint format, ``arg:``/``aux:`` keys, so
``mx.model.load_checkpoint(prefix, 0)`` reads it) and ``model-shapes.json`` (a JSON list of
``{"name": ..., "shape": [...]}``). It accepts an MXNet Module, and also a Gluon
``HybridBlock`` that has been hybridized and run at least once.

Importing this module does not import mxnet; ``save`` imports it when called.
"""

import json
import os
import shutil
import sys
import tempfile

from .names import HEARTBEAT_FILE_ENV

SYMBOL_FILE = "model-symbol.json"
PARAMS_FILE = "model-0000.params"
SHAPES_FILE = "model-shapes.json"

# Environment variables read when the caller does not name the hosts (script mode).
ENV_CURRENT_HOST = "SM_CURRENT_HOST"
ENV_HOSTS = "SM_HOSTS"

# Where a Gluon block keeps the input shapes of its last call (see remember_gluon_input_shapes).
_SHAPES_ATTR = "_mx_training_toolkit_input_shapes"
_RECORDER_MARK = "_mx_training_toolkit_recorder"
_TEMP_PREFIX = ".mx_training_toolkit-save-"


class UnsupportedModelError(TypeError):
    """The object given to ``save`` is not something the default serializer can write."""


class ModelNotReadyError(ValueError):
    """The model is of a supported type but cannot be serialized yet (not bound, never run)."""


def scheduler_host(hosts):
    """Return the host that runs the scheduler and saves the model: ``hosts[0]``."""
    hosts = list(hosts)
    if not hosts:
        raise ValueError("hosts is empty: there is no scheduler host")
    return hosts[0]


def save(model_dir, model, current_host=None, hosts=None, *, data_shapes=None):
    """Serialize ``model`` into ``model_dir`` on the scheduler host; do nothing on other hosts
    (nor, in a Horovod job, in any rank but 0).

    ``current_host`` and ``hosts`` default to ``$SM_CURRENT_HOST`` and ``$SM_HOSTS`` (a JSON
    list); when either is unknown this host counts as the only one. ``data_shapes`` (a list of
    ``(name, shape)``) overrides the input shapes written for a Gluon block.

    Returns the paths written, in a fixed order (``[]`` on hosts other than the scheduler).
    The files are written in a hidden temporary directory inside ``model_dir`` and then
    renamed into place, so a failure while serializing leaves none of them behind, and an
    existing file is never left half-overwritten. Raises ``UnsupportedModelError`` (a
    ``TypeError``) for objects it cannot serialize, ``ModelNotReadyError`` (a ``ValueError``)
    for a Module or block that is not ready, and ``OSError`` when ``model_dir`` is not writable.
    """
    current_host, hosts = _resolve_hosts(current_host, hosts)
    if current_host is not None and hosts is not None and current_host != scheduler_host(hosts):
        return []
    if os.environ.get("HOROVOD_RANK", "0") != "0":  # a Horovod job: only rank 0 saves
        return []
    writer = _writer_for(model, data_shapes)  # validates before anything touches the disk
    os.makedirs(model_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=model_dir)
    try:
        writer(staging)
        written = []
        for name in (PARAMS_FILE, SYMBOL_FILE, SHAPES_FILE):  # shapes last: it marks a full set
            target = os.path.join(model_dir, name)
            os.replace(os.path.join(staging, name), target)
            written.append(target)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remember_gluon_input_shapes():
    """Make every Gluon ``HybridBlock`` remember the input shapes of its latest call.

    MXNet keeps no record of them, yet ``model-shapes.json`` needs them. The legacy runner
    calls this before ``train()`` when the script has imported mxnet; a script-mode user may
    call it before training. Idempotent. Returns nothing.
    """
    from mxnet import gluon, nd

    original = gluon.HybridBlock.__call__
    if getattr(original, _RECORDER_MARK, False):
        return

    def __call__(self, *args):
        shapes = _input_shapes(args, nd.NDArray)
        if shapes is not None:
            # object.__setattr__: Block.__setattr__ would try to register the value
            object.__setattr__(self, _SHAPES_ATTR, shapes)
        return original(self, *args)

    __call__.__doc__ = original.__doc__
    setattr(__call__, _RECORDER_MARK, True)
    gluon.HybridBlock.__call__ = __call__


def heartbeat():
    """Tell the launcher's stall watchdog that this script is alive, without writing output.

    The watchdog (``MX_TRAINING_STALL_TIMEOUT_SECONDS``) ends a job whose workers, on every host,
    wrote no output for that many seconds; a script that trains silently calls this now and then
    (say once per batch: it costs one system call). It sets the modification time of the file
    that ``$MX_TRAINING_HEARTBEAT_FILE`` names, creating it if need be, so any process that
    inherits the variable (a data loader, a shell script) may do the same (``touch "$FILE"``).
    Does nothing when the variable is unset (no watchdog, or outside the launcher). Returns
    whether it touched the file; never raises for a file it cannot touch.
    """
    path = os.environ.get(HEARTBEAT_FILE_ENV)
    if not path:
        return False
    try:
        os.utime(path)
    except FileNotFoundError:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError:
            return False
    except OSError:
        return False
    return True


def _resolve_hosts(current_host, hosts):
    if current_host is None:
        current_host = os.environ.get(ENV_CURRENT_HOST) or None
    if hosts is None and os.environ.get(ENV_HOSTS):
        raw = os.environ[ENV_HOSTS]
        problem = ValueError("%s is not a JSON list of host names: %r" % (ENV_HOSTS, raw))
        try:
            hosts = json.loads(raw)
        except ValueError as error:
            raise problem from error
        if not isinstance(hosts, list):
            raise problem
    return current_host, hosts


def _type_name(obj):
    cls = type(obj)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def _writer_for(model, data_shapes):
    """Return a function that writes the three files for ``model`` into a directory."""
    if "mxnet" not in sys.modules:  # then it cannot be an MXNet object: spare the import
        raise _unsupported(model)
    try:
        import mxnet as mx
    except ImportError as error:
        raise UnsupportedModelError(
            "cannot save %s with the default serializer: mxnet is not importable (%s); "
            "define save(model, model_dir) in your script" % (_type_name(model), error)
        ) from error
    if isinstance(model, mx.mod.BaseModule):
        return _module_writer(model)
    if isinstance(model, mx.gluon.HybridBlock):
        return _block_writer(model, data_shapes)
    if isinstance(model, mx.gluon.Block):
        raise UnsupportedModelError(
            "cannot save %s with the default serializer: it is a Gluon Block but not a "
            "HybridBlock, so it has no symbol to export; use a HybridBlock (hybridize() it and "
            "run it once), or define save(model, model_dir) in your script" % _type_name(model)
        )
    raise _unsupported(model)


def _unsupported(model):
    return UnsupportedModelError(
        "cannot save %s with the default serializer, which writes MXNet Modules and Gluon "
        "HybridBlocks; define save(model, model_dir) in your script to save it yourself"
        % _type_name(model)
    )


def _module_writer(module):
    if not (module.binded and module.params_initialized):
        raise ModelNotReadyError(
            "cannot save %s: it must be bound and have initialized parameters "
            "(call bind() and init_params(), or fit())" % _type_name(module)
        )
    shapes = [_shape_entry(desc[0], desc[1]) for desc in module.data_shapes]

    def write(directory):
        module.symbol.save(os.path.join(directory, SYMBOL_FILE))
        module.save_params(os.path.join(directory, PARAMS_FILE))
        _write_json(os.path.join(directory, SHAPES_FILE), shapes)

    return write


def _block_writer(block, data_shapes):
    if not block._cached_graph:  # pylint: disable=protected-access
        raise ModelNotReadyError(
            "cannot save %s: it has no graph to export yet; call net.hybridize(), then run it "
            "once on a batch (net(x)) before saving it, or define save(model, model_dir) in "
            "your script" % _type_name(block))
    names = [var.name for var in block._cached_graph[0]]  # pylint: disable=protected-access
    if data_shapes is not None:
        shapes = [_shape_entry(name, shape) for name, shape in data_shapes]
    else:
        recorded = getattr(block, _SHAPES_ATTR, None)
        if recorded is None or len(recorded) != len(names):
            raise ModelNotReadyError(
                "cannot save %s: the shapes of its inputs (%s) in its last call were not "
                "recorded; they are for calls made after training_utils."
                "remember_gluon_input_shapes(), which legacy mode runs before train() when the "
                "script imports mxnet at its top level; import mxnet at the top of the script, "
                "pass data_shapes=[(name, shape), ...] to save(), or define "
                "save(model, model_dir) in your script" % (_type_name(block), ", ".join(names)))
        shapes = [_shape_entry(name, shape) for name, shape in zip(names, recorded)]

    def write(directory):
        block.export(os.path.join(directory, "model"), epoch=0)
        _write_json(os.path.join(directory, SHAPES_FILE), shapes)

    return write


def _input_shapes(args, ndarray_type):
    """Shapes of the NDArrays in (nested) ``args``, in Gluon's input order; None for other calls."""
    shapes = []
    pending = list(args)
    while pending:
        arg = pending.pop(0)
        if isinstance(arg, (list, tuple)):
            pending[0:0] = list(arg)
        elif isinstance(arg, ndarray_type):
            shapes.append(tuple(arg.shape))
        elif arg is not None:
            return None  # a Symbol call (or anything else) says nothing about data shapes
    return shapes


def _shape_entry(name, shape):
    return {"name": str(name), "shape": [int(dim) for dim in shape]}


def _write_json(path, value):
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(value, stream)
