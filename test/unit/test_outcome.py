"""The one function that turns whatever ended a job into its outcome, and the status words."""

import pytest

from mx_training_toolkit.errors import ConfigError, PipInstallError
from mx_training_toolkit.outcome import Ending, Facts, JobResult, Outcome, decide, describe_status, exit_status, \
    failure_text


@pytest.mark.parametrize("returncode,status", [(0, 0), (1, 1), (3, 3), (-9, 137), (-15, 143), (-11, 139), (255, 255)])
def test_exit_status(returncode, status):
    assert exit_status(returncode) == status


@pytest.mark.parametrize("status,signum,words", [
    (0, 0, "exited successfully"),
    (1, 0, "exited with status 1"),
    (3, 0, "exited with status 3"),
    (128, 0, "exited with status 128"),
    (137, 9, "was killed by SIGKILL (exit status 137); probably out of memory"),
    (143, 15, "was killed by SIGTERM (exit status 143)"),
    (139, 11, "was killed by SIGSEGV (exit status 139)"),
    (130, 2, "was killed by SIGINT (exit status 130)"),
    (255, 0, "exited with status 255"),
    # A script's own sys.exit(130) or sys.exit(137) is a status, not a death by signal.
    (130, 0, "exited with status 130"),
    (137, 0, "exited with status 137"),
])
def test_describe_status(status, signum, words):
    assert describe_status(status, signum) == words


@pytest.mark.parametrize("step,message,detail,text", [
    ("user script", "train.py exited with status 3", "Traceback...\nValueError: x",
     "User script failed: train.py exited with status 3\n\nTraceback...\nValueError: x\n"),
    ("configuration", "hyperparameters.json: invalid JSON", "",
     "Configuration error: hyperparameters.json: invalid JSON\n"),
    ("configuration", "two\nlines", "", "Configuration error: two lines\n"),
    ("something new", "m", "", "Something new failed: m\n"),
    ("peer host", "algo-1: User script failed: x", "", "Job failed on algo-1: User script failed: x\n"),
])
def test_failure_text(step, message, detail, text):
    assert failure_text(step, message, detail) == text


@pytest.mark.parametrize("code,status", [(None, 0), (0, 0), (3, 3), (256, 0), (257, 1), (True, 1), ("bye", 1)])
def test_status_of_sys_exit_is_pythons(code, status):
    from mx_training_toolkit.runner import status_of_exit
    assert status_of_exit(SystemExit(code)) == status


ONE = Facts("algo-1", False, "train.py", 10.0)
TWO = Facts("algo-2", True, "train.py", 10.0)
WORKER3 = JobResult("worker", "algo-1", 3, ("Traceback", "ValueError: x"))


@pytest.mark.parametrize("facts,ending,first_line,status", [
    (ONE, Ending(), "", 0),
    (ONE, Ending(error=ConfigError("hyperparameters.json: invalid JSON")),
     "Configuration error: hyperparameters.json: invalid JSON", 2),
    (ONE, Ending(error=PipInstallError("`pip install -r requirements.txt` exited with status 1")),
     "pip install failed: `pip install -r requirements.txt` exited with status 1", 4),
    (ONE, Ending(error=KeyError("x"), traceback="Traceback"), "Internal error: the launcher failed: KeyError('x')", 70),
    (ONE, Ending(state="failed", results=(WORKER3,)), "User script failed: train.py exited with status 3", 3),
    (ONE, Ending(state="failed", results=(JobResult("worker", "algo-1", 137, (), "", 9),)),
     "User script failed: train.py was killed by SIGKILL (exit status 137); probably out of memory", 137),
    (ONE, Ending(state="failed", results=(JobResult("worker", "algo-1", 137),)),
     "User script failed: train.py exited with status 137", 137),
    (ONE, Ending(state="failed", results=(JobResult("worker", "algo-1", 1, (), "", 0, "train() raised ValueError"),)),
     "User script failed: train.py exited with status 1: train() raised ValueError", 1),
    (ONE, Ending(state="failed", results=(JobResult("server", "algo-1", 0, (), "it exited before the workers "
                                                    "finished"),)),
     "Parameter server failed: the server process exited successfully; it exited before the workers finished", 1),
    # Another host's failure: its status, and its own first line after "Job failed on <host>:".
    (TWO, Ending(state="failed", results=(WORKER3,)),
     "Job failed on algo-1: User script failed: train.py on algo-1 exited with status 3", 3),
    (TWO, Ending(state="failed", results=(JobResult("launcher", "algo-1", 2, (), "Configuration error: bad"),)),
     "Job failed on algo-1: Configuration error: bad", 2),
    (TWO, Ending(state="failed", results=(JobResult("worker", "algo-2", 3),)),
     "User script failed: train.py on algo-2 exited with status 3", 3),
    # Stops: before the end, the script's own way out, after the end.
    (ONE, Ending(state="preparing", signum=15), "Job stopped: the launcher received SIGTERM before the job finished",
     143),
    (ONE, Ending(state="stopped", signum=15, worker=JobResult("worker", "algo-1", 7)),
     "Job stopped: the launcher received SIGTERM before the job finished; train.py exited with status 7", 7),
    (ONE, Ending(state="stopped", signum=1, worker=JobResult("worker", "algo-1", 129, (), "", 1)),
     "Job stopped: the launcher received SIGHUP before the job finished; train.py was killed by SIGHUP "
     "(exit status 129)", 129),
    (ONE, Ending(state="stopped", signum=15, worker=JobResult("worker", "algo-1", 137, (), "", 9), worker_killed=True),
     "Job stopped: the launcher received SIGTERM before the job finished; train.py did not stop within 10 s and was "
     "killed", 143),
    (ONE, Ending(state="succeeded", signum=15),
     "Job stopped: the launcher received SIGTERM while it was stopping the job's remaining processes (the job itself "
     "had finished)", 143),
    (ONE, Ending(state="failed", results=(WORKER3,), signum=15),
     "User script failed: train.py exited with status 3 (the launcher then received SIGTERM)", 3),
    # Every host was stopped at once: another host's stop reached us first, but ours is our story.
    (TWO, Ending(state="failed", results=(JobResult("launcher", "algo-1", 130, (), "Job stopped: the launcher "
                                                    "received SIGINT", 2),), signum=2),
     "Job stopped: the launcher received SIGINT before the job finished", 130),
    # Another host's stop while this one ran on: that host is the root cause.
    (TWO, Ending(state="failed", results=(JobResult("launcher", "algo-1", 143, (), "Job stopped: the launcher "
                                                    "received SIGTERM", 15),)),
     "Job failed on algo-1: Job stopped: the launcher received SIGTERM", 143),
    # A Horovod rank: which one, and where.
    (TWO, Ending(state="failed", results=(JobResult("worker", "algo-2", 1, rank=3),)),
     "User script failed: train.py (rank 3) on algo-2 exited with status 1", 1),
    (TWO, Ending(state="failed", results=(JobResult("worker", "algo-1", 134, signal=6, rank=0),)),
     "Job failed on algo-1: User script failed: train.py (rank 0) on algo-1 was killed by SIGABRT (exit status 134)",
     134),
    # The script wrote output/failure itself and exited 0: the job failed, its words are kept.
    (ONE, Ending(user_failure_file=True), "User script failed: train.py wrote output/failure and exited 0", 1),
])
def test_decide(facts, ending, first_line, status):
    outcome = decide(facts, ending)
    assert (outcome.first_line if not outcome.ok else "", outcome.exit_status) == (first_line, status)


def test_decide_keeps_the_stderr_tail_as_detail():
    outcome = decide(ONE, Ending(state="failed", results=(WORKER3,)))
    assert outcome == Outcome("user script", "train.py exited with status 3",
                              "Last lines of its stderr:\nTraceback\nValueError: x", 3)
