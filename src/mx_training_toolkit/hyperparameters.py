"""Pure hyperparameter handling: tolerant decoding, SDK-style encoding, the reserved split, argv rendering."""

import json

from . import names

RESERVED_PREFIX = "sagemaker_"
RESERVED_KEYS = frozenset({"_tuning_objective_metric", "default_user_module_name", names.PS_PORT_HP,
                           names.PS_VERBOSE_HP})

# sagemaker_* keys that are the launcher's own settings; the rest are "framework params"
# (distribution switches and the like) and are exported as SM_FRAMEWORK_PARAMS.
FIXED_RESERVED = frozenset({names.PROGRAM_HP, names.SUBMIT_DIR_HP, names.LOG_LEVEL_HP, names.JOB_NAME_HP,
                            names.REGION_HP, names.CLOUDWATCH_HP, names.LEGACY_MODE_HP})


def decode(raw):
    """Decode each value with JSON; a value that is not valid JSON stays the raw string.

    Non-string values (tools that write real JSON) are kept as they are.
    """
    decoded = {}
    for key, value in raw.items():
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):  # RecursionError: nested too deeply for the parser
                pass
        decoded[key] = value
    return decoded


def encode(hyperparameters):
    """JSON-encode each value, as the SageMaker SDK does before a job starts (``decode`` undoes it):
    ``{"epochs": 10, "sagemaker_program": "train.py"}`` -> ``{"epochs": "10", "sagemaker_program": '"train.py"'}``."""
    return {str(key): json.dumps(value) for key, value in hyperparameters.items()}


def is_reserved(key):
    return key.startswith(RESERVED_PREFIX) or key in RESERVED_KEYS


def split(hyperparameters):
    """Return ``(user, reserved)``: the user's hyperparameters and the launcher-owned ones."""
    user = {k: v for k, v in hyperparameters.items() if not is_reserved(k)}
    reserved = {k: v for k, v in hyperparameters.items() if is_reserved(k)}
    return user, reserved


def framework_params(reserved):
    """The sagemaker_* keys that are not fixed launcher settings (e.g. distribution switches)."""
    return {k: v for k, v in reserved.items() if k.startswith(RESERVED_PREFIX) and k not in FIXED_RESERVED}


def render_value(value):
    """Render one value the way the reference does: ``str()``, except dicts as ``k1=v1,k2=v2``
    (sorted by key)."""
    if isinstance(value, dict):
        return ",".join("{}={}".format(k, value[k]) for k in sorted(value))
    return str(value)


def to_cmd_args(user_hyperparameters):
    """Render user hyperparameters as argv: sorted keys, ``--key value`` (``-k value`` for one letter)."""
    args = []
    for key in sorted(user_hyperparameters):
        flag = "-" + key if len(key) == 1 else "--" + key
        args.extend([flag, render_value(user_hyperparameters[key])])
    return args


def to_bool(value):
    """Interpret a switch that may arrive as a bool, a number or a string ("true", "False", "1")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off", ""):
            return False
    raise ValueError("expected true or false, got {!r}".format(value))
