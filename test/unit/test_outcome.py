"""The one function that turns whatever ended a job into its outcome, and the status words."""

import pytest

from mx_training_toolkit import masking
from mx_training_toolkit.errors import ConfigError, PipInstallError
from mx_training_toolkit.masking import MASK, Masker
from mx_training_toolkit.outcome import CUT_MARK, MAX_BLOCK_LINE, MAX_FIRST_LINE, Ending, Facts, JobResult, Outcome, \
    decide, describe_status, exit_status, failure_text, one_line


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
WORKER3 = JobResult("worker", "algo-1", 3, ("Traceback", "ValueError: x"), recorded=True)  # sys.exit(3) by a runner


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
    assert outcome.text == "User script failed: train.py exited with status 3\n\nLast lines of its stderr:\n" \
        "Traceback\nValueError: x\n"


# --- the failure file's layout (docs/contract.md section 6) ----------------------------------------

SECRET = "s3cr3t-" + "x" * 30
MASKER = Masker({"api_token": SECRET})
TWO_KB = "bad value " * 205


@pytest.mark.parametrize("text,limit,line", [
    ("short", 10, "short"),
    ("exactly 10", 10, "exactly 10"),
    ("eleven char", 10, "elev" + CUT_MARK),
    ("two\nlines\r\nand\rmore", 100, "two lines and more"),
    # Masked, then cut: a secret that straddles the cut leaves none of itself behind.
    ("a" * 90 + SECRET + " tail", 100, "a" * 90 + "****" + CUT_MARK),
    ("a" * 90 + SECRET, 200, "a" * 90 + MASK),
    # A multi-line secret is masked before its line breaks become spaces.
    ("key: " + SECRET[:10] + "\n" + SECRET[10:], 100, "key: " + "********"),
])
def test_one_line_masks_then_makes_one_line_then_cuts(text, limit, line):
    masker = Masker({"api_token": SECRET, "private_key": SECRET[:10] + "\n" + SECRET[10:]})
    assert one_line(text, limit, masker) == line


@pytest.mark.parametrize("result,line", [
    # A Python script: the exception the runner recorded, whole, after who and how.
    (JobResult("worker", "algo-1", 1, ("Traceback",) + ("  frame",) * 80 + ("ValueError: bad",),
               reason="ValueError: bad", recorded=True),
     "User script failed: train.py exited with status 1: ValueError: bad"),
    # sys.exit(3): the runner recorded no exception; the status says it all.
    (JobResult("worker", "algo-1", 3, ("progress 3/10",), recorded=True),
     "User script failed: train.py exited with status 3"),
    # A shell script or a binary recorded nothing: its last non-empty stderr line.
    (JobResult("worker", "algo-1", 2, ("cat: /x: No such file or directory", "", "  ")),
     "User script failed: train.py exited with status 2: last stderr line: cat: /x: No such file or directory"),
    (JobResult("worker", "algo-1", 2, ()), "User script failed: train.py exited with status 2"),
    # Killed by a signal: its last words are no error.
    (JobResult("worker", "algo-1", 137, ("epoch 3",), signal=9),
     "User script failed: train.py was killed by SIGKILL (exit status 137); probably out of memory"),
    # A parameter-server role runs no runner: its last stderr line.
    (JobResult("server", "algo-1", 1, ("[12:00:01] Check failed: bind",)),
     "Parameter server failed: the server process exited with status 1: last stderr line: "
     "[12:00:01] Check failed: bind"),
    # A long message: line 1 is cut to its limit with a visible marker; the type and the message's start stay.
    (JobResult("worker", "algo-1", 1, (), reason="ValueError: " + TWO_KB, recorded=True),
     ("User script failed: train.py exited with status 1: ValueError: " + TWO_KB)[:MAX_FIRST_LINE - len(CUT_MARK)]
     + CUT_MARK),
    # A multi-line message: its line breaks become spaces.
    (JobResult("worker", "algo-1", 1, (), reason="KeyError: 'a'\nduring\nsetup", recorded=True),
     "User script failed: train.py exited with status 1: KeyError: 'a' during setup"),
    # A secret straddling the cut is masked first.
    (JobResult("worker", "algo-1", 1, (), reason="ValueError: " + "v" * 730 + " " + SECRET + " end", recorded=True),
     ("User script failed: train.py exited with status 1: ValueError: " + "v" * 730 + " " + MASK)[
         :MAX_FIRST_LINE - len(CUT_MARK)] + CUT_MARK),
])
def test_line_one_names_the_error(result, line):
    masking.use(MASKER)
    try:
        outcome = decide(ONE, Ending(state="failed", results=(result,)))
        assert outcome.first_line == line
        assert outcome.text.split("\n", 1)[0] == line and len(line) <= MAX_FIRST_LINE
        assert "s3cr3t" not in outcome.text
    finally:
        masking.use(None)


def test_line_one_of_a_rank_on_another_host_and_the_signal_after_it():
    result = JobResult("worker", "algo-2", 1, (), reason="RuntimeError: nan loss", rank=3, recorded=True)
    assert decide(TWO, Ending(state="failed", results=(result,), signum=15)).first_line == \
        "User script failed: train.py (rank 3) on algo-2 exited with status 1 (the launcher then received SIGTERM): " \
        "RuntimeError: nan loss"
    # On another host, that host's own line 1 follows "Job failed on <host>:".
    assert decide(Facts("algo-1", True, "train.py"), Ending(state="failed", results=(result,))).first_line == \
        "Job failed on algo-2: User script failed: train.py (rank 3) on algo-2 exited with status 1: " \
        "RuntimeError: nan loss"


@pytest.mark.parametrize("others,attempts,text", [
    ((), (), "L1\n\nD\n"),
    (("algo-2: worker exited with status 1",), (),
     "L1\nOther failures:\n  algo-2: worker exited with status 1\n\nD\n"),
    ((), ("attempt 1: exited with status 3",), "L1\nEarlier attempts:\n  attempt 1: exited with status 3\n\nD\n"),
    (tuple("f{}".format(i) for i in range(8)), ("a\nb",),
     "L1\nOther failures:\n  f0\n  f1\n  f2\n  f3\n  f4\n  ... and 3 more\nEarlier attempts:\n  a b\n\nD\n"),
    (("x" * 300 + SECRET,), (), "L1\nOther failures:\n  " + "x" * (MAX_BLOCK_LINE - 2 - len(CUT_MARK)) + CUT_MARK
     + "\n\nD\n"),
])
def test_the_blocks_of_other_failures_and_earlier_attempts(others, attempts, text):
    assert failure_text("something new", "m", "D", others=others, attempts=attempts, mask=MASKER) == \
        text.replace("L1", "Something new failed: m")


def test_the_other_failures_are_listed_below_the_root_cause_one_line_each_in_their_order():
    facts = Facts("algo-1", True, "train.py")
    root = JobResult("worker", "algo-3", 6, ("ValueError: bad",), reason="ValueError: bad", rank=4, recorded=True)
    others = (JobResult("worker", "algo-2", 1, ("tb",), reason="horovod.common.exceptions.HorovodInternalError: x",
                        rank=2, consequence=True, recorded=True),
              JobResult("launcher", "algo-4", 1, (), "the connection to the launcher on algo-4 was lost"))
    outcome = decide(facts, Ending(state="failed", results=(root,) + others))
    assert outcome.exit_status == 6
    assert outcome.text.splitlines()[:4] == [
        "Job failed on algo-3: User script failed: train.py (rank 4) on algo-3 exited with status 6: ValueError: bad",
        "Other failures:",
        "  User script failed: train.py (rank 2) on algo-2 exited with status 1: "
        "horovod.common.exceptions.HorovodInternalError: x",
        "  algo-4: the connection to the launcher on algo-4 was lost"]


def test_the_block_of_other_failures_is_capped():
    from mx_training_toolkit.outcome import MAX_BLOCK_LINES

    results = tuple(JobResult("worker", "algo-{}".format(i), 1, rank=i) for i in range(2, 12))
    lines = decide(Facts("algo-1", True, "train.py"), Ending(state="failed", results=results)).text.splitlines()
    block = lines[lines.index("Other failures:") + 1:]
    assert block[MAX_BLOCK_LINES] == "  ... and 4 more" and block[0].endswith("(rank 3) on algo-3 exited with status 1")


@pytest.mark.parametrize("signum,status", [(2, 130), (15, 143), (9, 137)])
def test_128_plus_n_is_one_function(signum, status):
    from mx_training_toolkit.outcome import signal_status

    assert signal_status(signum) == exit_status(-signum) == status
    assert decide(Facts(), Ending(state="stopped", signum=signum)).exit_status == status


def test_a_stall_is_the_whole_jobs_every_host_says_so_and_its_stacks_come_last():
    stall = JobResult("stall", "algo-1", 124, (), "no output from any worker for 30 s")
    stacks = "Stacks of the job's processes on algo-2 (asked with SIGQUIT):\n--- worker on algo-2, pid 7 ---\n  File x"
    result = decide(Facts("algo-2", True), Ending(state="failed", results=(stall,), stacks=stacks))
    assert (result.first_line, result.exit_status) == ("Job stalled: no output from any worker for 30 s", 124)
    assert result.text == "Job stalled: no output from any worker for 30 s\n\n" + stacks + "\n"


def test_stacks_follow_the_stderr_tail_of_a_process_killed_after_its_grace():
    worker = JobResult("worker", "algo-1", 137, ("last line",), signal=9)
    ending = Ending(state="stopped", signum=15, worker=worker, worker_killed=True, stacks="Stacks ...\n  File y")
    text = decide(Facts(entry_point="train.py", grace=2.0), ending).text
    assert text == ("Job stopped: the launcher received SIGTERM before the job finished; train.py did not stop "
                    "within 2 s and was killed\n\nLast lines of its stderr:\nlast line\n\nStacks ...\n  File y\n")


def test_a_job_that_succeeded_writes_no_stacks():
    assert decide(Facts(), Ending(stacks="Stacks ...")).ok
