"""The stall watchdog's eyes on one host: when a worker here last showed it is alive.

A worker (the script, or a Horovod rank) shows it is alive by writing output, on stdout or
stderr, or by touching the host's heartbeat file (``training_utils.heartbeat``, or anything that
sets the mtime of the file ``MX_TRAINING_HEARTBEAT_FILE`` names: the script's own child processes
inherit the variable). Output of the scheduler, the servers and the rendezvous server is not
progress, nor are Horovod's own stall warnings (``PipeWatch``): they say that the job waits.

``HostProgress.idle`` is what the job's rules (``jobrules.JobRules``, on the first host) hear from
each host: the first host asks its own, every other host sends its own with each ping.
"""

import os
import re
import time

# Horovod's stall warning (horovod/common/stall_inspector.cc): a log line that names its source
# file, then "Missing ranks:" (or "Stalled ranks:") and one line per rank, "1: [tensor, ...]"
# ("1!: [...]" for a stalled rank), the list cut with "..." when long.
HOROVOD_STALL_MARK = b"stall_inspector"
HOROVOD_STALL_LINE = re.compile(rb"^\s*(Missing ranks:|Stalled ranks:|\d+!?: \[.*|\.\.\.\]?)?\s*$")
LINE_BREAK = re.compile(rb"[\r\n]")
HOLD = 4096  # bytes of an unfinished line that may be held back to judge it whole
# Seconds after a read judged to be progress during which the next reads are not looked at: the
# watchdog needs progress to a second, and looking (a search of each read for Horovod's mark) would
# cost a fast writer a third of its throughput (a 64 KiB read takes 30 us to search; the pipe brings
# one every 70 us). Nothing is recorded meanwhile either, so a stall warning can never chain itself
# into progress; at worst a warning that starts right after the script's own output counts once.
LOOK_EVERY = 0.05


class HostProgress:
    """When a worker of this host last wrote output or touched the heartbeat file ``heartbeat``.
    Before any worker has started (the code is being put in place) the host counts as busy."""

    def __init__(self, heartbeat, clock=time.monotonic, wall=time.time):
        self.heartbeat = heartbeat
        self.clock = clock
        self.wall = wall
        self.last = None  # ``clock`` time of the last output; None until a worker starts

    def begin(self):
        """A worker starts: from now on the host may be idle."""
        if self.last is None:
            self.last = self.clock()

    def saw_output(self):
        self.last = self.clock()

    def recent(self, seconds):
        """Whether output was seen less than ``seconds`` ago."""
        return self.last is not None and self.clock() - self.last < seconds

    def idle(self):
        """Seconds since a worker here last wrote output or touched the heartbeat file (0 before one started)."""
        if self.last is None:
            return 0.0
        idle = self.clock() - self.last
        try:
            beat = self.wall() - os.stat(self.heartbeat).st_mtime
        except OSError:
            return max(0.0, idle)
        return max(0.0, min(idle, beat))

    def pipe_watch(self):
        """A ``PipeWatch`` for one pipe of a worker (each pipe has its own, as lines are cut per pipe)."""
        return PipeWatch(self)


class PipeWatch:
    """Called with each read of a worker's pipe: tells ``progress`` when it holds output that is
    not one of Horovod's stall warnings. Reads may cut a warning anywhere (Horovod writes it in
    pieces, unbuffered), so an unfinished line that may start a warning (it starts with "[", as
    Horovod's log lines do) is held back until its end; a line that goes on past ``HOLD`` bytes,
    or ends with "\\r" (a progress bar), is judged as it is."""

    def __init__(self, progress):
        self.progress = progress
        self._in_warning = False  # the last whole line belonged to a stall warning
        self._held = b""  # the start of an unfinished line, not judged yet

    def __call__(self, data):
        if not self._held and not self._in_warning:
            if self.progress.recent(LOOK_EVERY):
                return
            if HOROVOD_STALL_MARK not in data:
                end = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
                rest = data[end:]
                if rest.startswith(b"[") and len(rest) < HOLD:
                    self._held = rest
                    if not end:
                        return
                self.progress.saw_output()
                return
        lines = LINE_BREAK.split(self._held + data)
        rest = lines.pop()
        counts = False
        for line in lines:
            counts = self._counts(line) or counts
        self._held = b""
        if rest:
            if len(rest) < HOLD and (self._in_warning or rest.startswith(b"[")):
                self._held = rest
            else:
                counts = self._counts(rest) or counts
        if counts:
            self.progress.saw_output()

    def _counts(self, line):
        """Whether the whole line ``line`` is progress (not part of a stall warning)."""
        if HOROVOD_STALL_MARK in line:
            self._in_warning = True
            return False
        if self._in_warning and HOROVOD_STALL_LINE.match(line):
            return False
        self._in_warning = False
        return True
