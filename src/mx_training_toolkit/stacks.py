"""Stacks of a stuck process: where each Python process of the job is when it no longer moves.

Every Python process the launcher starts (the script and legacy runners, Horovod's ranks and its
rendezvous server, the parameter server's scheduler and servers) arms the standard library's
``faulthandler`` first thing (``arm_code``): on ``SIGNAL`` it writes the Python stack of every one
of its threads to its own file, named by ``MX_TRAINING_STACKS_FILE``, from a C signal handler, so
it answers even while its main thread waits inside MXNet, ps-lite or Horovod. A script's child
processes that fork inherit the handler; those that exec a new program do not.

The launcher asks for the stacks (``Supervisor.dump_stacks``) before it SIGKILLs a process that
outlived its grace period, and when the stall watchdog ends the job; they reach the log and the
failure file's tail, each under the process's role, rank, host and pid (``text``).

Why SIGQUIT: it is the signal that asks a process to show where it is (a JVM dumps its threads on
it, a Go program its goroutines), and nothing a training script runs on uses it: MXNet, ps-lite,
Horovod and Gloo install no handler for it, and frameworks that take a signal for their own ends
(checkpoint on preemption, requeue) use SIGUSR1, SIGUSR2 or SIGTERM. The launcher never forwards it
to the job (a stop signal reaches the workers as SIGTERM or SIGINT: ``signals.forwarded``), and it
sends it only to processes that armed the handler: without one, SIGQUIT would end the process.

Why a file and not stderr: the script's own output stays byte-exact, and its stderr tail in the
failure file keeps the script's last lines.
"""

import os
from typing import NamedTuple

from .names import STACKS_FILE_ENV

SIGNAL = 3  # SIGQUIT on Linux (the arming code runs before anything imports the signal module)
SIGNAL_NAME = "SIGQUIT"
WAIT = 2.0  # seconds the launcher waits at most for the stacks it asked for
# After a stall, each host holds its processes this long after its own dump before it stops them: a
# host that heard the verdict first must not end its processes (and so change what the others'
# processes do, a Horovod rank failing for a lost peer) before every host has taken its stacks.
HOLD = 1.0
QUIET = 0.05  # seconds a stacks file must stay the same size once it grew: the dump is complete
MAX_DUMP = 32768  # bytes of one process's stacks kept (faulthandler shows 100 frames of 100 threads at most)
# The frames that say nothing about the user's code, dropped from a dump: the runners below it, and
# the ``python -c`` bootstrap (``user_code.runner_bootstrap``).
_HERE = os.path.dirname(os.path.abspath(__file__))
# Python's own import machinery (a process that waits inside an import, as the parameter server's
# roles do) says nothing either.
LAUNCH_FRAMES = tuple('  File "{}'.format(name) for name in (
    os.path.join(_HERE, "runner.py") + '"', os.path.join(_HERE, "legacy.py") + '"', '<string>"', "<frozen importlib."))
NONE_CAME = "(no stacks came within {:g} s: the process may be stopped, or in the kernel)"


def arm_code():
    """Python statements, for the start of a ``python -c`` program, that arm ``faulthandler`` on
    ``SIGNAL`` into the file ``MX_TRAINING_STACKS_FILE`` names (nothing when it is unset or
    cannot be opened: the process starts either way). Costs well under a millisecond."""
    return ("try:\n"
            " import faulthandler as _fh, os as _os\n"
            " _fh.register({signal}, _os.open(_os.environ[{env!r}], _os.O_WRONLY | _os.O_APPEND | _os.O_CREAT, 0o600),"
            " all_threads=True)\n"
            "except (KeyError, OSError):\n"
            " pass\n").format(signal=SIGNAL, env=STACKS_FILE_ENV)


class Dump(NamedTuple):
    """One process's answer: who it is (role, rank, host, pid) and what it wrote."""

    who: str
    text: str


def describe(role, rank, host, pid):
    """How a dump names its process: ``worker (rank 1) on algo-2, pid 4242``."""
    return "{}{} on {}, pid {}".format(role, "" if rank is None else " (rank {})".format(rank), host, pid)


def size(path):
    """The size of the stacks file ``path`` now (0 when there is none yet)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def read_from(path, offset, limit=MAX_DUMP):
    """What was written to ``path`` after its first ``offset`` bytes, at most ``limit`` bytes of it, as text."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read(limit + 1)
    except OSError:
        return ""
    lines = data[:limit].decode("utf-8", "replace").rstrip("\n").split("\n")
    text = "\n".join(line for line in lines if not line.startswith(LAUNCH_FRAMES))
    return text + "\n... [cut]" if len(data) > limit else text


def text(dumps, host, wait=WAIT):
    """The failure file's block of stacks (after the stderr tail): a heading, then each process's dump."""
    if not dumps:
        return ""
    parts = ["Stacks of the job's processes on {} (asked with {}):".format(host, SIGNAL_NAME)]
    for dump in dumps:
        parts.append("--- {} ---\n{}".format(dump.who, dump.text or NONE_CAME.format(wait)))
    return "\n".join(parts)
