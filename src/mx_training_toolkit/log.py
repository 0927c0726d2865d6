"""The launcher's log: one line per message on stderr, ``TIME LEVEL NAME: MESSAGE``, with the
job's secret hyperparameter values masked (``masking.mask``) in every message.

Not the ``logging`` package: importing it (with ``re``, ``traceback`` and friends) costs about a
tenth of the launcher's start-up budget, and the launcher needs only levelled lines.
"""

import sys
import time

from . import masking

DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR", CRITICAL: "CRITICAL"}
_state = {"level": INFO, "stream": None}


def set_level(level):
    """Show messages at ``level`` and above (a Python logging level number)."""
    _state["level"] = level


def enabled(level):
    """Whether a message at ``level`` is shown (to skip building one that is not)."""
    return level >= _state["level"]


def shorten(text, limit=200):
    """``text``, or for a longer one its first ``limit`` characters and how many more there were:
    a log line stays readable when a hyperparameter is kilobytes long."""
    if len(text) <= limit:
        return text
    return "{}...[{} more characters]".format(text[:limit], len(text) - limit)


# Control characters (C0, DEL, C1) as escapes: a value in a launcher line (a hyperparameter, a channel
# name, a file name) can neither end the line and forge the next one, nor move the cursor or colour it.
_ESCAPES = {c: "\\x{:02x}".format(c) for c in [*range(0x20), *range(0x7f, 0xa0)]}
_ESCAPES.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})
_ESCAPES_BUT_NEWLINE = {c: e for c, e in _ESCAPES.items() if c != ord("\n")}


def escape(text):
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``): one printable line."""
    return text.translate(_ESCAPES)


def _continued(message):
    """A message of several lines (a traceback) with its later lines indented, so that none of them
    reads as a line of the launcher; control characters other than those line ends escaped."""
    message = message.translate(_ESCAPES_BUT_NEWLINE)
    return message.replace("\n", "\n    ") if "\n" in message else message


def set_stream(stream):
    """Write to ``stream`` instead of the current ``sys.stderr`` (for tests)."""
    _state["stream"] = stream


def format_line(name, level, message, now):
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    return "{},{:03d} {} {}: {}\n".format(stamp, int(now % 1 * 1000), _NAMES.get(level, "LEVEL {}".format(level)),
                                         name, message)


class Logger:
    """``info``, ``warning`` ... with %-style arguments, like ``logging.Logger``."""

    def __init__(self, name):
        self.name = name

    def log(self, level, message, *args):
        if level < _state["level"]:
            return
        if args:
            message = message % tuple(escape(masking.mask(a)) if isinstance(a, str) else a for a in args)
        message = _continued(masking.mask(message))
        stream = _state["stream"] or sys.stderr
        try:
            stream.write(format_line(self.name, level, message, time.time()))
            stream.flush()
        except (OSError, ValueError):
            pass  # our stderr is gone: nothing better to do with a log line

    def debug(self, message, *args):
        self.log(DEBUG, message, *args)

    def info(self, message, *args):
        self.log(INFO, message, *args)

    def warning(self, message, *args):
        self.log(WARNING, message, *args)

    def error(self, message, *args):
        self.log(ERROR, message, *args)

    def exception(self, message, *args):
        """``error`` followed by the traceback of the exception being handled."""
        import traceback

        self.log(ERROR, (message % args if args else message) + "\n" + traceback.format_exc().rstrip())


def get_logger(name):
    return Logger(name)
