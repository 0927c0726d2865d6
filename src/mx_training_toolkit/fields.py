"""The launcher's fields of a job as a table (``FIELDS``): each ``JobConfig`` attribute with the
hyperparameter that gives it, the environment variable that gives it when the hyperparameter is
absent, how it is parsed, its default and the bounds of a number (docs/contract.md sections 2-3).

A parser takes ``(value, where, bounds)`` and returns the attribute's value or raises a
``ConfigError`` whose message starts with ``where`` ("hyperparameters.json: field 'x'" or
"environment variable X"), so every message names the file and field, or the variable.
"""

import os
import posixpath
from typing import Any, Callable, NamedTuple, Optional, Tuple

from . import hyperparameters as hp
from . import names
from .errors import ConfigError

HYPERPARAMETERS_FILE = "hyperparameters.json"
DEFAULT_LOG_LEVEL = 20
DEFAULT_PS_PORT = 8000
PORT_BOUNDS = (1, 65535)


class Required(NamedTuple):
    """The default of a field that must be given: what it is, for the message that says it is missing."""

    what: str


class Field(NamedTuple):
    """One row of the table: ``name`` is the ``JobConfig`` attribute; ``key`` the hyperparameter
    (None: only the environment gives it); ``env`` the variable read when the key is absent (None:
    none); ``default`` the value when neither gives one (a ``Required``: an error), never parsed;
    ``bounds`` (minimum, maximum or None) for an integer."""

    name: str
    key: Optional[str]
    parse: Callable[[Any, str, Any], Any]
    default: Any = None
    bounds: Optional[Tuple[int, Optional[int]]] = None
    env: Optional[str] = None

    def read(self, reserved, environ, file=HYPERPARAMETERS_FILE):
        """This field's value from ``reserved`` (the decoded reserved hyperparameters), else from
        ``environ``, else the default. Raises ``ConfigError`` for a value its parser refuses, or
        for a required field that neither gives."""
        if self.key is not None and self.key in reserved:
            return self.parse(reserved[self.key], "{}: field {!r}".format(file, self.key), self.bounds)
        if self.env is not None and environ.get(self.env) is not None:
            return self.parse(environ[self.env], "environment variable {}".format(self.env), self.bounds)
        if isinstance(self.default, Required):
            raise ConfigError("{}: field {!r} ({}) is missing and {} is not set".format(
                file, self.key, self.default.what, self.env))
        return self.default


# ---- parsers ----------------------------------------------------------------------------------


def integer(value, where, bounds=None):
    """An integer (a whole float or a numeric string too, never a bool) within ``bounds``."""
    minimum, maximum = bounds or (None, None)
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            number = None
        else:
            number = int(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    if number is None or (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        shown = " between {} and {}".format(minimum, maximum) if minimum is not None and maximum is not None else ""
        raise ConfigError("{} must be an integer{}, got {!r}".format(where, shown, value))
    return number


def integer_or_unset(value, where, bounds=None):
    """``integer``, with null meaning not given (None)."""
    return None if value is None else integer(value, where, bounds)


def boolean(value, where, bounds=None):
    """true or false, in any of the spellings ``hyperparameters.to_bool`` accepts."""
    try:
        return hp.to_bool(value)
    except ValueError:
        raise ConfigError("{} must be true or false, got {!r}".format(where, value)) from None


def boolean_or_unset(value, where, bounds=None):
    """``boolean``, with null or "" meaning not given (None)."""
    return None if value is None or value == "" else boolean(value, where)


def text(value, where, bounds=None):
    if not isinstance(value, str):
        raise ConfigError("{} must be a string, got {!r}".format(where, value))
    return value


def mpirun_options(value, where, bounds=None):
    if not isinstance(value, str):
        raise ConfigError("{} must be a string of mpirun options, got {!r}".format(where, value))
    return value


def text_or_unset(value, where, bounds=None):
    """A variable's text; "" means not given (None)."""
    return value or None


def path_or_url(value, where, bounds=None):
    """A path or URL; null means not given (None)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ConfigError("{} must be a path or URL, got {!r}".format(where, value))
    return value


def entry_point(value, where, bounds=None):
    """A file name relative to the code, in one spelling: "./t.py" would give legacy mode the module
    name "./t", and "a//t.py" the package module "a..t"."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("{} must be a file name, got {!r}".format(where, value))
    if os.path.isabs(value) or ".." in value.split("/"):
        raise ConfigError("{} must name a file inside the code, got {!r}".format(where, value))
    return posixpath.normpath(value)


# ---- the table --------------------------------------------------------------------------------

# In the order they are checked: with several bad fields, the first one here is reported.
FIELDS = (
    Field("user_entry_point", names.PROGRAM_HP, entry_point, Required("the entry point"), env=names.PROGRAM_ENV),
    Field("submit_directory", names.SUBMIT_DIR_HP, path_or_url, env=names.SUBMIT_DIR_ENV),
    Field("log_level", names.LOG_LEVEL_HP, integer, DEFAULT_LOG_LEVEL, (0, 50)),
    Field("parameter_server_enabled", names.PS_ENABLED_HP, boolean, False),
    Field("mpi_enabled", names.MPI_ENABLED_HP, boolean, False),
    Field("mpi_processes_per_host", names.MPI_PROCESSES_HP, integer_or_unset, None, (1, 1024)),
    Field("mpi_num_processes", names.MPI_TOTAL_HP, integer_or_unset, None, (1, None)),
    Field("mpi_custom_options", names.MPI_OPTIONS_HP, mpirun_options, ""),
    Field("legacy_mode", names.LEGACY_MODE_HP, boolean_or_unset, env=names.LEGACY_MODE_ENV),
    Field("ps_port", names.PS_PORT_HP, integer, DEFAULT_PS_PORT, PORT_BOUNDS),
    Field("ps_verbose", names.PS_VERBOSE_HP, integer, 0, (0, 2)),
    Field("job_name", names.JOB_NAME_HP, text),
    Field("region", names.REGION_HP, text),
    Field("platform_job_name", None, text_or_unset, env=names.TRAINING_JOB_NAME_ENV),
    Field("default_region", None, text_or_unset, env=names.AWS_REGION_ENV),
)
BY_NAME = {f.name: f for f in FIELDS}


def read_all(reserved, environ):
    """Every field of the table -> {attribute: value}. Raises ``ConfigError`` for the first bad one,
    or when the job asks for two ways of distributing it."""
    values = {f.name: f.read(reserved, environ) for f in FIELDS}
    if values["mpi_enabled"] and values["parameter_server_enabled"]:
        raise ConfigError("{}: fields {!r} and {!r} are both true; a job distributes with one of them".format(
            HYPERPARAMETERS_FILE, names.PS_ENABLED_HP, names.MPI_ENABLED_HP))
    return values
