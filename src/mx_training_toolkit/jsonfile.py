"""Reading one config file of the job: a JSON object, read safely (never blocking on a FIFO), and
the checks every value of it must pass before it is handed on (argv, environment, SM_* JSON)."""

import json
import os
import stat

from .errors import ConfigError

# The deepest nesting a field of a config file (a hyperparameter value included) may have. Real
# configurations nest a few levels; Python's recursion limit (1000 frames) is the hard bound that
# encoding SM_TRAINING_ENV, in the launcher or in the script, must stay well below.
MAX_DEPTH = 100


def read_object(path, what, default):
    """Read one JSON object file; a missing file gives ``default``. Only a regular file (or a link
    to one) is read: anything else is a ``ConfigError`` naming the file."""
    name = os.path.basename(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return default
    except OSError as e:
        raise ConfigError("{}: cannot read the file ({})".format(name, e.strerror or e)) from e
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # a FIFO or a device would block or never end; a directory has no text
            raise ConfigError("{}: cannot read the file (it is {}, not a regular file)".format(name, _kind(mode)))
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError("{}: cannot read the file ({})".format(name, e.strerror or e)) from e
    finally:
        os.close(fd)
    try:
        data = json.loads(raw.decode("utf-8-sig"))  # a byte-order mark (Windows editors) is harmless
    except UnicodeDecodeError as e:
        raise ConfigError("{}: not valid UTF-8 (byte {})".format(name, e.start)) from e
    except ValueError as e:
        raise ConfigError("{}: invalid JSON: {}".format(name, e)) from e
    except RecursionError:
        raise ConfigError("{}: invalid JSON: nested too deeply".format(name)) from None
    if not isinstance(data, dict):
        raise ConfigError("{}: expected a JSON object ({}), got {}".format(name, what, type(data).__name__))
    return data


def _kind(mode):
    """What a file that is not a regular one is, in words."""
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((words for test, words in kinds if test(mode)), "a special file")


def problem(value):
    """Why ``value`` (any JSON value) cannot be passed on, in words ("contains ...", "is nested
    ..."), else None: a string no argv, environment or file can carry, or nesting deeper than
    MAX_DEPTH (encoding it for SM_* or printing it would exhaust Python's recursion limit)."""
    stack = [(value, 0)]
    while stack:  # not recursive: JSON may nest as deep as the parser allows
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "contains a NUL character (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "contains an unpaired surrogate (\\ud800-\\udfff)"
        elif isinstance(item, (dict, list)):
            if depth == MAX_DEPTH:
                return "is nested more than {} levels deep".format(MAX_DEPTH)
            if isinstance(item, dict):
                stack.extend((key, depth + 1) for key in item)
                item = item.values()
            stack.extend((child, depth + 1) for child in item)
    return None


def check_values(mapping, file):
    """Refuse a top-level field whose name or value has a ``problem``."""
    for key, value in mapping.items():
        why = problem(key) or problem(value)
        if why:
            raise ConfigError("{}: field {!r} {}".format(file, key, why))


def check_env_names(names, file, what, prefix):
    """Refuse two ``names`` that become the same environment variable ``prefix + name.upper()``."""
    seen = {}
    for name in sorted(names):
        variable = prefix + name.upper()
        if variable in seen:
            raise ConfigError("{}: {} {!r} and {!r} both become the environment variable {}; rename one"
                              .format(file, what, seen[variable], name, variable))
        seen[variable] = name
