"""What stops the job's processes when the launcher itself is SIGKILLed (the OOM killer, ``kill -9``).

The launcher's direct children get SIGKILL then (``PR_SET_PDEATHSIG``), but not what they started:
a script's own children, in the script's session, would be re-parented to init and run on. Inside
a container that cannot happen (when PID 1 dies, the kernel kills every process of the container),
so a launcher that is PID 1 needs nothing more. Elsewhere (local runs, ``mx-train``) a small
watcher does it: started once at the launcher's start (a double fork, so that it is not the
launcher's child and never counts among the job's processes, then a fresh interpreter with an
empty environment), it learns the session of every process the launcher starts through a pipe,
and when that pipe ends without the launcher's ``done`` (the launcher is gone), it SIGKILLs every
process still in those sessions. A process that left its session (``setsid``) is out of its reach.
"""

import os
import sys

from .log import get_logger

log = get_logger(__name__)

# The watcher's own program: it runs as ``python -S -c WATCH <fd>`` with an empty environment (so no
# process search by the job's variables ever finds it) and imports nothing of ours.
WATCH = r"""
import os, sys, time
fd = int(sys.argv[1])
sessions, buf, done = set(), b"", False
while True:
    try:
        data = os.read(fd, 4096)
    except InterruptedError:
        continue
    if not data:
        break
    buf += data
    *lines, buf = buf.split(b"\n")
    for line in lines:
        if line == b"done":
            done = True
        elif line.isdigit():
            sessions.add(int(line))
if done or not sessions:
    sys.exit(0)
me = os.getpid()
for _ in range(50):  # what the dying processes start meanwhile is found in the next round
    found = 0
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                session = int(f.read().rsplit(b")", 1)[1].split()[3])
        except (OSError, ValueError, IndexError):
            continue
        if session in sessions:
            found += 1
            try:
                os.kill(int(name), 9)
            except OSError:
                pass
    if not found:
        break
    time.sleep(0.02)
"""


class Watcher:
    """The launcher's side: ``add(pid)`` for every process started in a session of its own,
    ``close()`` at the launcher's normal end (the watcher then exits doing nothing)."""

    def __init__(self, write_fd):
        self._fd = write_fd

    def add(self, pid):
        self._send(b"%d\n" % pid)

    def close(self):
        if self._fd is not None:
            self._send(b"done\n")
            os.close(self._fd)
            self._fd = None

    def _send(self, data):
        if self._fd is None:
            return
        try:
            os.write(self._fd, data)
        except OSError as e:  # the watcher is gone: the job runs on without it
            log.warning("watcher: %s; the job's processes are no longer stopped if the launcher is killed", e)
            os.close(self._fd)
            self._fd = None


def start():
    """Start the watcher -> a ``Watcher``, or None where none is needed (PID 1) or none could be
    started. Call it before any thread starts and before the launcher becomes a subreaper."""
    if os.getpid() == 1:
        return None
    try:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        first = os.fork()
    except OSError as e:
        log.warning("watcher: cannot start one (%s); if the launcher is killed, its script's own children "
                    "may outlive it", e)
        return None
    if first == 0:  # the intermediate child: start the watcher, then leave it to init
        try:
            os.close(write_fd)
            if os.fork() == 0:
                os.setsid()
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.set_inheritable(read_fd, True)
                os.execve(sys.executable, [sys.executable, "-S", "-c", WATCH, str(read_fd)], {})
        finally:
            os._exit(0)
    os.close(read_fd)
    os.waitpid(first, 0)
    return Watcher(write_fd)
