"""What stops the job's processes when the launcher itself is SIGKILLed (the OOM killer, ``kill -9``).

The launcher's direct children get SIGKILL then (``PR_SET_PDEATHSIG``), but not what they started:
a script's own children, in the script's session, would be re-parented to init and run on. Inside
a container that cannot happen (when PID 1 dies, the kernel kills every process of the container),
so a launcher that is PID 1 needs nothing more. Elsewhere (local runs, ``mx-train``) a small
watcher does it: started once at the launcher's start (a double fork, so that it is not the
launcher's child and never counts among the job's processes, then ``/bin/sh`` with an environment
of ``PATH`` alone), it learns the session of every process the launcher starts through a pipe,
and when that pipe ends without the launcher's ``done`` (the launcher is gone), it SIGKILLs every
process still in those sessions. A process that left its session (``setsid``) is out of its reach.
"""

import os

from .log import get_logger

log = get_logger(__name__)

# The watcher's own program, for /bin/sh (a millisecond to start, where Python takes tens): it runs with
# the pipe on file descriptor 3 and an environment of PATH alone (so that no search for the job's
# variables ever finds it). Session ids come one per line; "done" means the launcher ended normally.
# The session is field 6 of /proc/PID/stat, the 4th after the last ") " (the command name may hold
# anything).
WATCH = r"""
sessions=""
while IFS= read -r line <&3; do
    case "$line" in
        done) exit 0 ;;
        ""|*[!0-9]*) ;;
        *) sessions="$sessions $line" ;;
    esac
done
[ -n "$sessions" ] || exit 0
rounds=0
while [ "$rounds" -lt 50 ]; do
    found=0
    for dir in /proc/[0-9]*; do
        pid=${dir#/proc/}
        [ "$pid" = "$$" ] && continue
        stat=""
        { read -r stat < "$dir/stat"; } 2>/dev/null || continue
        set -- ${stat##*) }
        for session in $sessions; do
            if [ "${4:-}" = "$session" ]; then
                kill -9 "$pid" 2>/dev/null
                found=1
            fi
        done
    done
    [ "$found" = 0 ] && exit 0
    rounds=$((rounds + 1))
    sleep 0.02
done
"""


class Watcher:
    """The launcher's side: ``add(pid)`` for every process started in a session of its own,
    ``close()`` at the launcher's normal end (the watcher then exits doing nothing)."""

    def __init__(self, write_fd):
        self._fd = write_fd

    def add(self, pid):
        self._send(b"%d\n" % pid)

    def close(self):
        self._send(b"done\n")
        if self._fd is not None:
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
                if read_fd != 3:
                    os.dup2(read_fd, 3)  # inheritable
                os.set_inheritable(3, True)  # (dup2 onto itself leaves close-on-exec set)
                os.execve("/bin/sh", ["sh", "-c", WATCH, "mx-training-watcher"], {"PATH": "/usr/bin:/bin"})
        finally:
            os._exit(0)
    os.close(read_fd)
    os.waitpid(first, 0)
    return Watcher(write_fd)
