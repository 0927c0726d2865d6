"""Legacy mode, child side: ``python -m mx_training_toolkit.legacy`` (the launcher starts it through
``user_code.runner_bootstrap``, which calls ``main()``).

Run by the launcher with the code directory as working directory and ``SM_TRAINING_ENV``
and ``SM_MODULE_NAME`` set. It imports the user's module (never as ``__main__``), calls its
``train()`` with the keyword arguments the signature names, and saves what ``train()``
returns with the script's own ``save(model, model_dir)`` or the default serializer.

As in the original legacy container, ``hyperparameters`` holds every hyperparameter, the
launcher's own (``sagemaker_*``, ``_ps_port``, ...) included, and ``channel_input_dirs`` leaves out
Pipe-mode channels (their data comes through the platform's FIFOs, not a directory).

Exit status: 0 on success; the user's own code when they call ``sys.exit(n)``; 1 on any
other failure, after the user's traceback and one last stderr line starting with
``mx_training_toolkit.legacy: `` that says what went wrong, for the job's log. The status and
that reason (without the prefix; an exception's whole ``type: message``) are also recorded in
the launcher's status file
(``runner.record_status``), which is where the launcher reads them: MXNet's distributed shutdown
can replace the exit status, and whatever else writes to stderr (a thread of the script's, a
library at exit) can come after our last line.
"""

import importlib
import inspect
import json
import os
import sys
import traceback

from mx_training_toolkit import training_utils
from mx_training_toolkit.runner import describe_exception, record_status, status_of_exit

ENV_TRAINING_ENV = "SM_TRAINING_ENV"
ENV_MODULE_NAME = "SM_MODULE_NAME"

SUMMARY_PREFIX = "mx_training_toolkit.legacy: "
EXIT_FAILURE = 1

# The keyword arguments train() may ask for, in the order the documentation lists them,
# each with the SM_TRAINING_ENV key it comes from.
OFFERED_FROM_ENV = (
    ("hyperparameters", "all_hyperparameters"),
    ("input_data_config", "input_data_config"),
    ("channel_input_dirs", "channel_input_dirs"),
    ("output_data_dir", "output_data_dir"),
    ("model_dir", "model_dir"),
    ("num_gpus", "num_gpus"),
    ("num_cpus", "num_cpus"),
    ("hosts", "hosts"),
    ("current_host", "current_host"),
)
OFFERED = tuple(name for name, _ in OFFERED_FROM_ENV)

# The default serializer under every name a script may have imported it as (one object).
_DEFAULT_SAVE = training_utils.save


class LegacyError(Exception):
    """A failure the runner reports; ``str()`` is the summary line without the prefix."""

    def __init__(self, message, *, show_traceback=True):
        super().__init__(message)
        self.show_traceback = show_traceback  # print the chained cause's traceback first


class MissingArgumentError(LegacyError):
    """``train()`` requires a parameter the container does not offer."""


def train_kwargs(signature, offered, where="train()"):
    """Return the keyword arguments to call a function with ``signature`` from ``offered``.

    Every parameter the signature names that ``offered`` has is passed; with ``**kwargs``,
    everything in ``offered`` is. A parameter without a default that cannot be supplied (not
    offered, or positional-only) raises ``MissingArgumentError`` naming it and ``where``.
    """
    names = list(offered)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    kwargs = dict(offered) if accepts_any else {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
            continue
        required = param.default is param.empty
        if param.kind is param.POSITIONAL_ONLY:
            kwargs.pop(param.name, None)  # cannot be given by keyword; **kwargs must not get it
            if required:
                raise MissingArgumentError(
                    "%s requires positional-only parameter '%s', but the container passes "
                    "keyword arguments only; it provides: %s"
                    % (where, param.name, ", ".join(names)),
                    show_traceback=False)
            continue
        if param.name in offered:
            kwargs[param.name] = offered[param.name]
        elif required:
            raise MissingArgumentError(
                "%s requires parameter '%s', which the container does not provide; "
                "it provides: %s" % (where, param.name, ", ".join(names)),
                show_traceback=False)
    return kwargs


def offered_arguments(training_env):
    """Return the ``train()`` keyword arguments the container offers, from ``SM_TRAINING_ENV``:
    ``hyperparameters`` is all of them (reserved ones included); ``channel_input_dirs`` has the
    File-mode channels only."""
    missing = [key for _, key in OFFERED_FROM_ENV if key not in training_env]
    if missing:
        raise LegacyError("%s lacks %s" % (ENV_TRAINING_ENV, ", ".join(missing)),
                          show_traceback=False)
    offered = {name: training_env[key] for name, key in OFFERED_FROM_ENV}
    offered["channel_input_dirs"] = {name: path for name, path in offered["channel_input_dirs"].items()
                                     if not _is_pipe(offered["input_data_config"], name)}
    return offered


def _is_pipe(input_data_config, channel):
    settings = input_data_config.get(channel) if isinstance(input_data_config, dict) else None
    return isinstance(settings, dict) and settings.get("TrainingInputMode") == "Pipe"


def run(environ):
    """Import the user module named in ``environ``, train, save. Returns nothing; raises
    ``LegacyError`` for failures and lets the user's ``SystemExit`` through."""
    training_env = _load_training_env(environ)
    module_name = environ.get(ENV_MODULE_NAME) or training_env.get("module_name")
    if not module_name:
        raise LegacyError("%s is not set" % ENV_MODULE_NAME, show_traceback=False)
    offered = offered_arguments(training_env)
    script = training_env.get("user_entry_point") or module_name + ".py"
    module_name = module_name.replace("/", ".")  # SM_MODULE_NAME of sub/t.py is sub/t: the module is sub.t

    code_dir = os.getcwd()
    if sys.path[:1] != [code_dir]:
        sys.path.insert(0, code_dir)
    print("legacy mode: importing %s from %s" % (module_name, code_dir), flush=True)
    try:
        user_module = importlib.import_module(module_name)
    except Exception as error:
        raise LegacyError("importing %s failed: %s" % (script, describe_exception(error))) from error

    train = getattr(user_module, "train", None)
    if not callable(train):
        raise LegacyError(
            "%s defines no train() function; legacy mode imports the script and calls its "
            "train() (a script-mode script trains under if __name__ == '__main__': instead)"
            % script,
            show_traceback=False)
    where = "train() in %s" % script
    try:
        signature = inspect.signature(train)
    except (TypeError, ValueError) as error:
        raise LegacyError("cannot read the signature of %s: %s" % (where, error)) from error
    kwargs = train_kwargs(signature, offered, where)

    if "mxnet" in sys.modules:  # the script uses MXNet: let Gluon blocks remember input shapes
        training_utils.remember_gluon_input_shapes()
    print("legacy mode: calling train(%s)" % ", ".join(kwargs), flush=True)
    try:
        model = _awaited(train(**kwargs))
    except Exception as error:
        raise LegacyError("%s raised %s" % (where, describe_exception(error))) from error

    if model is None:
        print("legacy mode: train() returned None, so nothing is saved "
              "(return the model from train() to have it saved)", flush=True)
        return
    _save(user_module, script, model, offered)


def _awaited(value):
    """What an ``async def train()`` (or ``save()``) really returns: its coroutine run to the end in
    a new event loop, as its caller must; anything else as it is."""
    if not inspect.isawaitable(value):
        return value
    import asyncio

    async def wait():
        return await value

    return asyncio.run(wait())


def _save(user_module, script, model, offered):
    model_dir = offered["model_dir"]
    user_save = getattr(user_module, "save", None)
    if callable(user_save) and user_save is not _DEFAULT_SAVE:
        where = "save() in %s" % script
        print("legacy mode: calling save(model, model_dir) from %s" % script, flush=True)
        try:
            _awaited(user_save(model, model_dir))
        except Exception as error:
            raise LegacyError("%s raised %s" % (where, describe_exception(error))) from error
        return

    print("legacy mode: saving the %s returned by train() with the default serializer"
          % type(model).__name__, flush=True)
    try:
        written = _DEFAULT_SAVE(model_dir, model, offered["current_host"], offered["hosts"])
    except (training_utils.UnsupportedModelError, training_utils.ModelNotReadyError) as error:
        raise LegacyError(str(error), show_traceback=False) from error
    except OSError as error:
        raise LegacyError("cannot write the model to %s: %s" % (model_dir, error),
                          show_traceback=False) from error
    except Exception as error:
        raise LegacyError("the default serializer failed on the model returned by train(): %s"
                          % describe_exception(error)) from error
    if written:
        print("legacy mode: saved %s" % ", ".join(written), flush=True)
    else:
        print("legacy mode: %s is not the scheduler host (%s); the model is saved there"
              % (offered["current_host"], training_utils.scheduler_host(offered["hosts"])),
              flush=True)


def _load_training_env(environ):
    """The job's description: SM_TRAINING_ENV, or, when the launcher had to leave it out (it did
    not fit in the environment, see environment.HP_COPIES), the same object rebuilt from the
    job's files (SAGEMAKER_BASE_DIR, else /opt/ml)."""
    raw = environ.get(ENV_TRAINING_ENV)
    if not raw and environ.get("SM_MODEL_DIR"):  # started by the launcher, without room for it
        from mx_training_toolkit import config, environment

        cfg = config.load(config.base_dir_from(environ), environ)
        return environment.build(cfg, environ).training_env()
    if not raw:
        raise LegacyError("%s is not set; this runner is started by the training launcher"
                          % ENV_TRAINING_ENV, show_traceback=False)
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise LegacyError("%s is not valid JSON: %s" % (ENV_TRAINING_ENV, error),
                          show_traceback=False) from error
    if not isinstance(value, dict):
        raise LegacyError("%s is not a JSON object" % ENV_TRAINING_ENV, show_traceback=False)
    return value


def _print_user_traceback(error, stream):
    """Print ``error``'s traceback without the runner's and importlib's own frames."""
    tb = error.__traceback__
    while tb is not None and _is_ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb, file=stream)


def _is_ours(filename):
    return filename == __file__ or "importlib" in filename


def run_and_report(environ=None):
    """Run legacy mode -> ``(status, reason)``: the exit status (this is the one place that
    decides it) and the reason for a failure ("" when there is none to give)."""
    try:
        run(os.environ if environ is None else environ)
    except LegacyError as failure:
        sys.stdout.flush()
        cause = failure.__cause__
        if failure.show_traceback and cause is not None:
            _print_user_traceback(cause, sys.stderr)
        print(SUMMARY_PREFIX + str(failure), file=sys.stderr, flush=True)
        return EXIT_FAILURE, str(failure)
    except SystemExit as leave:  # the user's sys.exit(n): keep their status, as Python would
        if leave.code is None or isinstance(leave.code, int):
            print("legacy mode: the script called sys.exit(%s)" % leave.code, flush=True)
            return status_of_exit(leave), ""
        return status_of_exit(leave), describe_exception(leave)  # as Python would: the message is printed, 1
    return 0, ""


def main():
    """The runner's command: run legacy mode, record the status and reason, exit with the status."""
    sys.argv[:1] = [os.path.abspath(__file__)]  # what the script sees, as under ``python -m``, not "-c"
    status, reason = run_and_report()
    record_status(status, reason=reason)  # MXNet's distributed shutdown would replace the status with 0
    sys.exit(status)


if __name__ == "__main__":
    main()
