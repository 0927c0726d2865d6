"""How a job ended, in one place: the result records, the status words, and ``decide``.

Whatever ends a job -- an error in a step, the run loop's results, a stop signal, or the user
script's own failure file -- reaches ``decide``, which returns the one ``Outcome`` the launcher
writes (success or failure file) and exits with. Nothing else builds a failure's words or an
exit status.

The failure file's layout (docs/contract.md section 6) is built here too (``failure_text``):
line 1 (the step, who, the status, the error), the optional blocks of other failures and of
earlier attempts, then the detail (a stderr tail). Every line is masked first, then made one line,
then cut (``one_line``).
"""

import signal
from typing import NamedTuple, Optional, Tuple

from . import masking
from .errors import EXIT_INTERNAL, ToolkitError
from .roles import CHANNEL, LAUNCHER, STALL, role_of

EXIT_INTERNAL_CHANNEL = EXIT_INTERNAL

# Steps: the failure file's first words. A step not listed here reads "<Step> failed".
TITLES = {
    "configuration": "Configuration error",
    "code download": "Code download failed",
    "pip install": "pip install failed",
    "host resolution": "Host resolution failed",
    "user script": "User script failed",
    "parameter server": "Parameter server failed",
    "stopped": "Job stopped",
    "horovod": "Horovod rendezvous failed",
    "peer host": "Job failed on",  # followed by the host and that host's own first line
    "host channel": "Connection between hosts failed",
    "internal error": "Internal error",
    "stalled": "Job stalled",
}
HOST_RESULTS = (LAUNCHER, CHANNEL, STALL)  # results about a host, or the whole job: their note is their line
MAX_FIRST_LINE = 800  # characters of line 1, marker included: the platform shows 1024 of the file
CUT_MARK = " [cut]"  # ends a line that was cut to its limit
OTHER_FAILURES = "Other failures:"  # heading of the block of other failures (one line each)
EARLIER_ATTEMPTS = "Earlier attempts:"  # heading of the block of earlier attempts (one line each)
MAX_BLOCK_LINES = 5  # lines a block shows; one more line counts the rest
MAX_BLOCK_LINE = 200  # characters of each line of a block, marker included
STDERR_LINE = "last stderr line: "  # before the error when no exception was recorded (a shell script)


# The note of a worker that exited 0 after writing output/failure itself: the job failed (section 6).
USER_FAILURE_NOTE = "wrote output/failure and exited 0"


class JobResult(NamedTuple):
    """How one process (of this host or of another host) ended."""

    role: str  # a role of roles.TABLE: "worker", "scheduler", ..., or "launcher" (a whole host)
    host: str
    status: int  # the exit status: 128+N after a death by signal N
    stderr_tail: Tuple[str, ...] = ()
    note: str = ""  # more words: why a role's clean exit is a failure; a host's own first line
    signal: int = 0  # N when the process really died of signal N (not a script's sys.exit(128+N))
    reason: str = ""  # the error its runner recorded (an exception's "type: message"; the legacy runner's reason)
    rank: Optional[int] = None  # a Horovod worker's rank
    consequence: bool = False  # the failure only says that another Horovod rank failed first
    recorded: bool = False  # the process recorded its end (a runner's status file): ``reason`` is all it knew

    @property
    def ok(self):
        return self.status == 0


class Event(NamedTuple):
    """Something the run loop decides on."""

    kind: str  # one of the kinds below
    role: str = ""
    result: Optional[JobResult] = None  # EXIT, PEER_FAILED
    signum: int = 0  # SIGNAL
    child: object = None  # EXIT: the process handle the starter returned
    others: Tuple[JobResult, ...] = ()  # PEER_FAILED: the job's other failures, earliest first
    at: Optional[float] = None  # EXIT: when it happened (``time.monotonic``); None: when it is taken


EXIT = "exit"  # a process started for this host ended
PEER_FAILED = "peer-failed"  # another host reported a failure (or was lost)
ALL_DONE = "all-done"  # every worker of the job, on every host, finished successfully
SIGNAL = "signal"  # the launcher received a stop signal
CHILD = "sigchld"  # some descendant exited: time to reap orphans (never reaches the policy)


class Facts(NamedTuple):
    """What ``decide`` needs to know about the job to put a failure in words."""

    current_host: str = "algo-1"
    multi_host: bool = False
    entry_point: str = "the user script"
    grace: float = 10.0


class Ending(NamedTuple):
    """Whatever ended the job, as the launcher saw it."""

    state: str = "succeeded"  # the run loop's final ``JobState`` value, or "preparing" if it never ran
    results: Tuple[JobResult, ...] = ()  # failures: the root cause first, then the others, earliest first
    error: Optional[BaseException] = None  # an exception that ended the job
    traceback: str = ""  # for an unexpected exception
    signum: int = 0  # the first stop signal the launcher received, if any
    worker: Optional[JobResult] = None  # the worker's end, when a stop came while it ran
    worker_killed: bool = False  # the launcher had to SIGKILL the worker after the grace period
    hurried: bool = False  # ... or at once, on a second SIGINT
    user_failure_file: bool = False  # the user script wrote output/failure itself
    stacks: str = ""  # the stacks of this host's processes the launcher asked for (``stacks.text``)


class Outcome(NamedTuple):
    """What the launcher writes and exits with. ``step`` is empty for a success."""

    step: str
    message: str  # who, and how it ended
    detail: str  # below the blocks: a stderr tail
    exit_status: int
    error: str = ""  # the error itself (an exception's "type: message"), last on line 1
    others: Tuple[str, ...] = ()  # the job's other failures, earliest first, one line each
    attempts: Tuple[str, ...] = ()  # earlier attempts of the job, one line each (empty for now)
    stacks: str = ""  # last: the stacks of this host's processes, when the launcher asked for them

    @property
    def ok(self):
        return not self.step

    @property
    def first_line(self):
        return first_line(self.step, self.message, self.error)

    @property
    def text(self):
        """The failure file's whole text."""
        return failure_text(self.step, self.message, "\n\n".join(t for t in (self.detail, self.stacks) if t),
                            self.error, self.others, self.attempts)


def exit_status(returncode):
    """Popen's returncode (``-N`` for a death by signal N) -> a shell-style exit status: signal N
    becomes 128+N. The one place that does this sum."""
    return 128 - returncode if returncode < 0 else returncode


def signal_status(signum):
    """The exit status that stands for signal ``signum`` (128+N)."""
    return exit_status(-signum)


def describe_status(status, signum=0):
    """An exit status in words. Only a real death by signal (``signum``) is described as one:
    a script's own ``sys.exit(137)`` is just status 137."""
    if status == 0:
        return "exited successfully"
    if signum:
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = "signal {}".format(signum)
        words = "was killed by {} (exit status {})".format(name, status)
        if signum == signal.SIGKILL:
            words += "; probably out of memory"
        return words
    return "exited with status {}".format(status)


def signal_name(signum):
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "signal {}".format(signum)


def title(step):
    """The words a failure file's first line starts with for ``step``."""
    return TITLES.get(step, step[:1].upper() + step[1:] + " failed")


def one_line(text, limit, mask=None):
    """``text`` as one line of at most ``limit`` characters: masked first (``mask``, by default the
    job's ``masking.mask``), then its line breaks made spaces, then cut, ending in ``CUT_MARK``
    when it was cut. In this order no part of a secret survives the cut."""
    line = " ".join((mask or masking.mask)(text).splitlines())
    if len(line) > limit:
        line = line[:max(0, limit - len(CUT_MARK))] + CUT_MARK
    return line


def first_line(step, message, error="", mask=None):
    """Line 1 of the failure file: the step's title, ``message`` (who, and how it ended), and
    ``error`` (what the failed process recorded) last."""
    text = "{}{}{}".format(title(step), " " if step == "peer host" else ": ", message)
    if error:
        text += ": " + error
    return one_line(text, MAX_FIRST_LINE, mask)


def block(heading, items, mask=None):
    """The lines of an optional block of the failure file: nothing without ``items``, else
    ``heading`` and one line per item (at most ``MAX_BLOCK_LINES``, each cut as ``one_line``)."""
    if not items:
        return []
    lines = [heading] + ["  " + one_line(item, MAX_BLOCK_LINE - 2, mask) for item in items[:MAX_BLOCK_LINES]]
    if len(items) > MAX_BLOCK_LINES:
        lines.append("  ... and {} more".format(len(items) - MAX_BLOCK_LINES))
    return lines


def failure_text(step, message, detail="", error="", others=(), attempts=(), mask=None):
    """The failure file (docs/contract.md section 6): line 1, the block of other failures, the
    block of earlier attempts, then a blank line and the detail (the stderr tail)."""
    lines = [first_line(step, message, error, mask)] + block(OTHER_FAILURES, others, mask) + \
        block(EARLIER_ATTEMPTS, attempts, mask)
    text = "\n".join(lines) + "\n"
    if detail:
        text += "\n" + (mask or masking.mask)(detail.rstrip("\n")) + "\n"
    return text


def tail_text(what, tail):
    return "Last lines of {}:\n{}".format(what, "\n".join(tail)) if tail else ""


def result_message(result, facts):
    """A failed process's result -> the words after its step's title: who, and how it ended."""
    if result.role in HOST_RESULTS:
        return result.note
    role = role_of(result.role, result.rank)
    who = role.names(facts.entry_point, result.rank) if role else "the {} process".format(result.role)
    where = " on {}".format(result.host) if facts.multi_host else ""
    if result.note == USER_FAILURE_NOTE:  # it exited 0: its own failure file says it failed
        return "{}{} {}".format(who, where, USER_FAILURE_NOTE)
    message = "{}{} {}".format(who, where, describe_status(result.status, result.signal))
    if result.note:
        message += "; " + result.note
    return message


def result_error(result):
    """A failed process's error, for the end of line 1: what it recorded (an exception's
    "type: message"), else, for a process that recorded nothing and was not killed by a signal
    (a shell script, a binary, a parameter-server role), its last non-empty stderr line."""
    if result.reason or result.recorded or result.signal or result.role in HOST_RESULTS:
        return result.reason
    last = next((line for line in reversed(result.stderr_tail) if line.strip()), "")
    return STDERR_LINE + last.strip() if last else ""


def result_step(result):
    """The step a failed result belongs to (``roles.TABLE``); a role of another version's: a peer host's."""
    role = role_of(result.role, result.rank)
    return role.step if role else "peer host"


def result_line(result, facts):
    """The first line a failed result gives on the host where it happened (sent to the others)."""
    if result.role == LAUNCHER:
        return result.note
    return first_line(result_step(result), result_message(result, facts), result_error(result))


def stopped_result(host, signum):
    """What a launcher that received stop signal ``signum`` tells the other hosts."""
    return JobResult(LAUNCHER, host, signal_status(signum), (), "Job stopped: the launcher received {}".format(
        signal_name(signum)), signum)


def _stopped_together(facts, ending):
    """Whether the root cause is another host's stop while this launcher was stopped too (the
    platform stops every host at once): then this host tells of its own stop."""
    if not (ending.signum and ending.results):
        return False
    root = ending.results[0]
    return root.host != facts.current_host and root.role == LAUNCHER and bool(root.signal)


def decide(facts, ending):
    """Whatever ended the job -> the ``Outcome``. The only place exit statuses and failure words
    are decided."""
    together = _stopped_together(facts, ending)
    if ending.error is not None:
        outcome = _of_error(ending.error, ending.traceback)
    elif ending.results and not together:
        outcome = _of_results(facts, ending.results)
    elif ending.signum and (ending.state != "succeeded" or together):
        outcome = _of_stop(facts, ending)
    elif ending.signum:  # the job had finished; the signal came while its last processes were stopped
        outcome = Outcome("stopped", "the launcher received {} while it was stopping the job's remaining processes "
                          "(the job itself had finished)".format(signal_name(ending.signum)), "", signal_status(ending.signum))
    elif ending.user_failure_file:
        outcome = Outcome("user script", "{} {}".format(facts.entry_point, USER_FAILURE_NOTE), "", 1)
    else:
        return Outcome("", "", "", 0)
    if ending.signum and outcome.step != "stopped":
        outcome = outcome._replace(message=outcome.message + " (the launcher then received {})".format(
            signal_name(ending.signum)))
    return outcome._replace(stacks=ending.stacks)


def _of_error(error, traceback_text):
    if isinstance(error, ToolkitError):
        return Outcome(error.step, str(error), error.detail, error.exit_code)
    return Outcome("internal error", "the launcher failed: {!r}".format(error), traceback_text, EXIT_INTERNAL)


def other_line(result, facts):
    """Another failure of the job, for the block below line 1: its own line 1 (a host's launcher's
    words preceded by the host)."""
    line = result_line(result, facts)
    return "{}: {}".format(result.host, line) if result.role in (LAUNCHER, CHANNEL) else line


def _of_results(facts, results):
    root = results[0]
    detail = tail_text("its stderr", root.stderr_tail)
    others = tuple(other_line(r, facts) for r in results[1:])
    if root.host != facts.current_host and root.role != STALL:  # a stall is the whole job's: every host says so
        return Outcome("peer host", "{}: {}".format(root.host, result_line(root, facts)), detail, root.status or 1,
                       others=others)
    return Outcome(result_step(root), result_message(root, facts), detail, root.status or 1, result_error(root),
                   others)


def _of_stop(facts, ending):
    name = signal_name(ending.signum)
    message = "the launcher received {} before the job finished".format(name)
    status = signal_status(ending.signum)
    worker = ending.worker
    detail = ""
    if worker is not None:
        if ending.worker_killed and ending.hurried:
            message += "; {} was killed at once on a second SIGINT".format(facts.entry_point)
        elif ending.worker_killed:
            message += "; {} did not stop within {:.0f} s and was killed".format(facts.entry_point, facts.grace)
        else:
            message += "; {} {}".format(facts.entry_point, describe_status(worker.status, worker.signal))
            if worker.status and not worker.signal:  # the script chose its own status on the way out
                status = worker.status
        detail = tail_text("its stderr", worker.stderr_tail)
    return Outcome("stopped", message, detail, status)
