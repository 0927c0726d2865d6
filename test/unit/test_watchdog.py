"""The stall watchdog's eyes on one host: which output is progress, and the heartbeat file."""

import os

import pytest

from mx_training_toolkit.watchdog import LOOK_EVERY, HostProgress, PipeWatch
from fakes import FakeClock

# What Horovod 0.28 prints when a tensor waits for other ranks (horovod/common/stall_inspector.cc).
WARNING = (b"[2026-12-06 02:43:28.368359: W /tmp/pip-wheel-x/horovod/common/stall_inspector.cc:107] One or more "
           b"tensors were submitted to be reduced, gathered or broadcasted by subset of ranks and are waiting for "
           b"remainder of ranks for more than 60 seconds. This may indicate that different ranks are trying to "
           b"submit different tensors or that only subset of ranks is submitting tensors, which will cause "
           b"deadlock. \nMissing ranks:\n1: [horovod_allreduce.gradients, horovod_allreduce.bias, ...]\n\n")
SHUTDOWN = (b"[2026-12-06 02:44:28.368359: E /tmp/horovod/common/stall_inspector.cc:125] One or more rank (marked "
            b'by "!") is stalled for longer than 120 seconds. Will shutdown.\nStalled ranks:\n1!: [grads]\n')


class Counter:
    def __init__(self):
        self.seen = 0

    def saw_output(self):
        self.seen += 1

    def recent(self, seconds):  # every read is looked at
        return False


def reads(*chunks):
    """Feed ``chunks`` to one pipe's watch -> how many of the reads counted as progress."""
    counter = Counter()
    watch = PipeWatch(counter)
    counted = []
    for chunk in chunks:
        before = counter.seen
        watch(chunk)
        counted.append(counter.seen > before)
    return counted


@pytest.mark.parametrize("chunks,counted", [
    ((b"epoch 1 loss 0.5\n",), [True]),
    ((b"a progress bar 10%\r", b"20%\r"), [True, True]),
    ((b"no newline yet",), [True]),
    ((WARNING,), [False]),
    ((SHUTDOWN,), [False]),
    ((WARNING, WARNING), [False, False]),
    # Horovod writes its warning in pieces (unbuffered): cut anywhere, it is still no progress.
    ((WARNING[:1], WARNING[1:40], WARNING[40:300], WARNING[300:]), [False] * 4),
    (tuple(WARNING[i:i + 7] for i in range(0, len(WARNING), 7)), [False] * ((len(WARNING) + 6) // 7)),
    # A line of the script's own after a warning is progress, and so is one before it in the same read.
    ((WARNING, b"step 7\n"), [False, True]),
    ((b"step 6\n" + WARNING,), [True]),
    ((WARNING + b"step 7\n",), [True]),
    # A script's line that starts with "[" is held until it ends, then it counts.
    ((b"[epoch 3]", b" loss 0.1\n"), [False, True]),
    ((b"[" + b"x" * 5000,), [True]),  # too long to be held back
    ((b"0: [1, 2, 3]\n",), [True]),  # looks like a rank list, but no warning came before it
])
def test_which_output_is_progress(chunks, counted):
    assert reads(*chunks) == counted


def test_the_host_is_busy_until_a_worker_starts_then_idle_since_its_last_output(tmp_path):
    clock, wall = FakeClock(), FakeClock()
    clock.now, wall.now = 50.0, 1000.0
    progress = HostProgress(str(tmp_path / "heartbeat"), clock, wall)
    clock.now = 80.0
    assert progress.idle() == 0.0  # preparing: the code is being put in place
    progress.begin()
    clock.now = 83.0
    assert progress.idle() == 3.0
    progress.pipe_watch()(b"loss 0.1\n")
    clock.now = 84.5
    assert progress.idle() == 1.5
    progress.begin()  # a second worker (rank) changes nothing
    assert progress.idle() == 1.5


def test_a_touched_heartbeat_file_is_progress(tmp_path):
    clock, wall = FakeClock(), FakeClock()
    clock.now, wall.now = 10.0, 1000.0
    beat = tmp_path / "heartbeat"
    progress = HostProgress(str(beat), clock, wall)
    progress.begin()
    clock.now, wall.now = 40.0, 1030.0
    beat.touch()
    os.utime(beat, (1027.0, 1027.0))
    assert progress.idle() == 3.0  # the heartbeat is newer than the last output
    os.utime(beat, (900.0, 900.0))
    assert progress.idle() == 30.0  # older: the output counts
    os.utime(beat, (2000.0, 2000.0))
    assert progress.idle() == 0.0  # a clock that jumped back is never negative idleness


def test_reads_right_after_progress_are_not_looked_at_and_record_nothing(tmp_path):
    clock = FakeClock()
    progress = HostProgress(str(tmp_path / "heartbeat"), clock)
    progress.begin()
    watch = progress.pipe_watch()
    clock.now = 10.0
    watch(b"loss 0.1\n")
    assert progress.last == 10.0
    clock.now = 10.0 + LOOK_EVERY / 2
    watch(b"loss 0.09\n")  # not looked at: the last progress stays where it was
    watch(WARNING)
    assert progress.last == 10.0
    clock.now = 20.0
    watch(WARNING)  # looked at again: a warning alone is no progress
    assert progress.last == 10.0
    watch(b"loss 0.08\n")
    assert progress.last == 20.0
