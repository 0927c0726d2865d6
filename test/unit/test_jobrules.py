"""The job's rules on the first host, from tables: done-counting, and the root cause by time with
the settle rule (times are the first host's clock, given by the rows; nothing sleeps)."""

import pytest

from mx_training_toolkit.jobrules import ALL_DONE, RECHECK, SETTLE, JobRules, Verdict
from mx_training_toolkit.outcome import JobResult

HOSTS = ("algo-1", "algo-2", "algo-3")


def failure(host, status, consequence=False):
    return JobResult("worker", host, status, consequence=consequence)


def play(rows):
    """Rows: ``(now, "failed", host, status, age[, consequence])``, ``(now, "done", host)`` or
    ``(now, "tick")``; the rules' ``deadline`` is honoured as the loop would: a tick is only
    played at or after it. -> (the verdicts as (when, root host, root status, other hosts), the
    deadline left)."""
    rules = JobRules(HOSTS)
    verdicts = []
    for row in rows:
        now, what = row[0], row[1]
        if what == "failed":
            host, status, age = row[2:5]
            verdict = rules.failed(failure(host, status, *row[5:]), now - age, now)
        elif what == "done":
            verdict = rules.worker_done(row[2])
        else:
            assert rules.deadline is not None and now >= rules.deadline, "a tick the loop would not play"
            verdict = rules.timed_out(now)
        if verdict is not None:
            verdicts.append((now, verdict.root and verdict.root.host, verdict.root and verdict.root.status,
                             tuple(r.host for r in verdict.others)))
    return verdicts, rules.deadline


C = True  # a consequence

TABLE = [
    ("an ordinary failure decides at once", [(1, "failed", "algo-2", 3, 0)], [(1, "algo-2", 3, ())], None),
    ("the first ordinary failure to arrive is the root cause; later ones change nothing",
     [(1, "failed", "algo-2", 3, 0), (1.01, "failed", "algo-3", 4, 0.5)], [(1, "algo-2", 3, ())], None),
    ("a consequence is held: nothing yet, the timer set from when it happened",
     [(2, "failed", "algo-2", 1, 0.5, C)], [], 1.5 + SETTLE),
    ("a consequence arriving before its cause is held; the cause decides at once and is the root",
     [(2, "failed", "algo-2", 1, 0, C), (2.2, "failed", "algo-3", 6, 0)], [(2.2, "algo-3", 6, ("algo-2",))], None),
    ("with no cause, the earliest consequence is the root when the time is up",
     [(2, "failed", "algo-2", 1, 0, C), (2.5, "failed", "algo-3", 1, 1.0, C), (1.5 + SETTLE, "tick")],
     [(1.5 + SETTLE, "algo-3", 1, ("algo-2",))], None),
    ("one timer: a later consequence does not extend the wait",
     [(2, "failed", "algo-2", 1, 0, C), (4, "failed", "algo-3", 1, 0, C), (2 + SETTLE, "tick")],
     [(2 + SETTLE, "algo-2", 1, ("algo-3",))], None),
    ("a consequence that happened longer ago than the settle time decides on arrival",
     [(10, "failed", "algo-2", 1, SETTLE + 1, C)], [(10, "algo-2", 1, ())], None),
    ("the others are listed earliest first",
     [(2, "failed", "algo-2", 1, 0, C), (2.1, "failed", "algo-1", 1, 0.6, C), (2.3, "failed", "algo-3", 9, 0)],
     [(2.3, "algo-3", 9, ("algo-1", "algo-2"))], None),
    ("nothing after the verdict counts", [(1, "failed", "algo-2", 3, 0), (2, "failed", "algo-3", 1, 0, C)],
     [(1, "algo-2", 3, ())], None),
    ("every host's workers done: all-done, once", [(1, "done", "algo-1"), (2, "done", "algo-3"), (3, "done", "algo-2"),
                                                   (4, "done", "algo-2")], [(3, None, None, ())], None),
    ("a stranger's name or a repeat does not count", [(1, "done", "algo-1"), (2, "done", "algo-1"),
                                                      (3, "done", "algo-9"), (4, "done", "algo-2")], [], None),
    ("a failure after all-done still fails the job", [(1, "done", "algo-1"), (1, "done", "algo-2"),
                                                      (1, "done", "algo-3"), (2, "failed", "algo-2", 1, 0)],
     [(1, None, None, ()), (2, "algo-2", 1, ())], None),
]


@pytest.mark.parametrize("name,rows,verdicts,deadline", TABLE, ids=[row[0] for row in TABLE])
def test_rules(name, rows, verdicts, deadline):
    assert play(rows) == (verdicts, pytest.approx(deadline) if deadline else None)


def test_a_tick_before_the_deadline_decides_nothing():
    rules = JobRules(HOSTS)
    assert rules.failed(failure("algo-2", 1, True), 5.0, 5.0) is None
    assert rules.timed_out(5.0 + SETTLE - 0.01) is None
    assert rules.timed_out(5.0 + SETTLE) == Verdict(failure("algo-2", 1, True))


def test_a_time_later_than_its_arrival_is_taken_as_its_arrival():
    # An age cannot be negative on the wire; a local caller's clock may still be read late.
    rules = JobRules(HOSTS)
    rules.failed(failure("algo-2", 1, True), 9.0, 5.0)
    assert rules.deadline == 5.0 + SETTLE


def test_finished_means_a_lost_host_is_no_loss():
    rules = JobRules(("algo-1", "algo-2"))
    assert not rules.finished
    rules.worker_done("algo-1")
    assert not rules.finished
    assert rules.worker_done("algo-2") == ALL_DONE and rules.finished


# ---- the stall rule: every host idle for ``stall`` seconds, as each said it -------------------

def stall_rules(stall=10.0):
    return JobRules(HOSTS, stall=stall)


def say(rules, now, *idle):
    """Each host of HOSTS says at ``now`` how long its workers have been idle -> the verdict of a tick then."""
    for host, seconds in zip(HOSTS, idle):
        rules.idle(host, seconds, now)
    return rules.timed_out(now)


def test_the_job_stalls_once_every_host_said_it_was_idle_for_the_limit():
    rules = stall_rules()
    assert say(rules, 100.0, 9.9, 20.0, 30.0) is None  # the first host is still busy enough
    verdict = say(rules, 100.1, 10.0, 20.1, 30.1)
    assert verdict.root == JobResult("stall", "algo-1", 124, (), "no output from any worker for 10 s")
    assert rules.failure is verdict and rules.stall_due(101.0) is None
    assert say(rules, 200.0, 99.0, 99.0, 99.0) is None  # decided once


def test_a_host_that_has_not_said_anything_keeps_the_job_alive():
    rules = stall_rules()
    rules.idle("algo-1", 50.0, 100.0)
    rules.idle("algo-2", 50.0, 100.0)
    assert rules.timed_out(100.0) is None
    assert rules.stall_due(100.0) == 100.0 + RECHECK  # looked at again soon, until it says
    assert not rules.stalled


def test_the_rule_waits_for_a_hosts_own_word_rather_than_guess():
    rules = stall_rules()
    say(rules, 100.0, 0.0, 0.0, 8.0)  # algo-3 idle since 92: all three could be idle for 10 s at 110
    assert rules.stall_due(100.0) == 110.0
    assert rules.timed_out(110.0) is None  # nobody said so yet: no stall before they do
    assert rules.stall_due(110.0) == 110.0 + RECHECK
    assert say(rules, 110.5, 10.5, 10.5, 3.0) is None  # algo-3 wrote output meanwhile
    assert rules.stall_due(110.5) == 117.5


def test_finished_jobs_and_rules_without_a_limit_never_stall():
    rules = JobRules(HOSTS)  # no stall limit
    assert say(rules, 100.0, 1e6, 1e6, 1e6) is None and rules.stall_due(100.0) is None
    done = stall_rules()
    for host in HOSTS:
        done.worker_done(host)
    assert say(done, 100.0, 99.0, 99.0, 99.0) is None and done.stall_due(100.0) is None
