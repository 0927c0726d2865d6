"""Start process specs in their own sessions, stream their output, decide in one loop, stop and reap.

Each child runs in a new session (its own process group). Reader threads copy its output line by
line as it comes (never blocking the child on a full pipe) and keep the last lines of its stderr.
A waiter thread per child posts its exit to one event queue; the main thread's loop decides.
"""

import collections
import contextlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import namedtuple

from .errors import Terminated, UserScriptError
from .log import get_logger

log = get_logger(__name__)

TAIL_LINES = 60
EARLY_EXIT_GRACE = 10.0  # seconds a role may precede the workers in exiting 0
MAX_LINE = 4000
WORKER = "worker"
SCHEDULER = "scheduler"
SERVER = "server"


class ProcessSpec(namedtuple("ProcessSpec", "role argv env cwd prefix status_file", defaults=("", None))):
    """One process to run: argv (never a shell string), its whole environment and working dir."""

    __slots__ = ()
    # role: str
    # argv: Tuple[str, ...]
    # env: Mapping[str, str]
    # cwd: str
    # prefix: str  # put before each output line ("" for the user script)
    # status_file: Optional[str]  # where the child records its real exit status (see runner.py)


class JobResult(namedtuple("JobResult", "role host status stderr_tail note", defaults=((), ""))):
    """How one process (or a peer host) ended. ``status`` is an exit status, 128+N for signal N."""

    __slots__ = ()
    # role: str
    # host: str
    # status: int
    # stderr_tail: Tuple[str, ...]
    # note: str  # extra words for the failure file ("exited before the worker finished", ...)

    @property
    def ok(self):
        return self.status == 0


class Event(namedtuple("Event", "kind role status result extra", defaults=("", 0, None, None))):
    """Something the run loop must decide on: a child's exit or news from the other hosts."""

    __slots__ = ()
    # kind: str  # "exit" (a child), "peer-failed", "all-done" (from the cross-host channel)
    # role: str
    # status: int
    # result: Optional[JobResult]
    # extra: dict


def exit_status(returncode):
    """Popen's returncode -> a shell-style exit status: signal N becomes 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def describe_status(status):
    """One table-tested function from an exit status to words."""
    if status == 0:
        return "exited successfully"
    if status > 128 and status - 128 < signal.NSIG:
        try:
            name = signal.Signals(status - 128).name
        except ValueError:
            name = "signal {}".format(status - 128)
        words = "was killed by {} (exit status {})".format(name, status)
        if status == 128 + signal.SIGKILL:
            words += "; probably out of memory"
        return words
    return "exited with status {}".format(status)


class _Output:
    """Serialises whole lines from many reader threads onto one binary stream."""

    def __init__(self, stream):
        self._stream = stream
        self._lock = threading.Lock()

    def write_line(self, data):
        with self._lock:
            try:
                self._stream.write(data)
                self._stream.flush()
            except (OSError, ValueError):
                pass  # our own stdout went away: keep draining the child anyway


class Child:
    """A started process: its Popen, its stderr tail and its reader and waiter threads."""

    def __init__(self, spec, popen, events, stdout, stderr):
        self.spec = spec
        self.popen = popen
        self.pgid = popen.pid  # start_new_session: the child leads its own group
        self.tail = collections.deque(maxlen=TAIL_LINES)
        self._status = None
        prefix = spec.prefix.encode()
        self._threads = [
            threading.Thread(target=self._pump, args=(popen.stdout, stdout, prefix, None), daemon=True),
            threading.Thread(target=self._pump, args=(popen.stderr, stderr, prefix, self.tail), daemon=True),
        ]
        for t in self._threads:
            t.start()
        threading.Thread(target=self._wait, args=(events,), daemon=True).start()

    @staticmethod
    def _pump(pipe, out, prefix, tail):
        for line in iter(pipe.readline, b""):
            out.write_line(prefix + line if prefix else line)
            if tail is not None:
                tail.append(line[:MAX_LINE].decode("utf-8", "replace").rstrip("\n"))
        pipe.close()

    @property
    def status(self):
        """The exit status once the child has been reaped (by any thread), else None."""
        if self._status is None and self.popen.returncode is not None:
            status = exit_status(self.popen.returncode)
            if status == 0 and self.spec.status_file:
                status = _recorded_status(self.spec.status_file)
            self._status = status
        return self._status

    def _wait(self, events):
        self.popen.wait()
        status = self.status
        events.put(Event("exit", role=self.spec.role, status=status, extra={"child": self}))

    def drain(self, timeout):
        """Wait (bounded) until the output threads have copied everything the child wrote."""
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))

    def result(self, host, note=""):
        return JobResult(self.spec.role, host, self.status if self.status is not None else -1,
                         tuple(self.tail), note)


def _recorded_status(path):
    """The status a child recorded before MXNet's shutdown could replace it (0 if none)."""
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _signal_group(pgid, signum):
    try:
        os.killpg(pgid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _children_of(pid):
    """Direct children of ``pid`` from /proc (orphans re-parented to us included)."""
    found = []
    try:
        tasks = os.listdir("/proc/{}/task".format(pid))
    except OSError:
        return found
    for tid in tasks:
        try:
            with open("/proc/{}/task/{}/children".format(pid, tid)) as f:
                found.extend(int(p) for p in f.read().split())
        except OSError:
            pass
    return found


def become_subreaper():
    """Ask Linux to re-parent our orphaned descendants to us, so none can outlive the launcher."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


class StopRequest:
    """The first SIGTERM/SIGINT the launcher received. Its signal handler records it here and
    raises ``Terminated`` itself only while the main thread is not inside the run loop's wait
    (raising inside the queue's lock handling would break the lock); the loop checks it instead."""

    def __init__(self):
        self.signum = None
        self.waiting = False

    def on_signal(self, signum, frame):
        if self.signum is not None:
            return  # the first signal decides; the stop is already under way
        self.signum = signum
        if not self.waiting:
            raise Terminated(signum)


class Supervisor:
    """Runs the processes of one host and stops them all, with one grace period."""

    def __init__(self, host, grace=10.0, stdout=None, stderr=None, stop_request=None):
        self.host = host
        self.grace = grace
        self.stop_request = stop_request or StopRequest()
        self.killed_groups = set()  # groups we had to SIGKILL after the grace period
        self.events = queue.Queue()
        self.children = []
        self._scratch = None
        self._stdout = _Output(stdout or sys.stdout.buffer)
        self._stderr = _Output(stderr or sys.stderr.buffer)

    def start(self, spec):
        """Start ``spec`` in its own session, output piped to our reader threads."""
        try:
            popen = subprocess.Popen(
                list(spec.argv), env=dict(spec.env), cwd=spec.cwd, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
        except OSError as e:  # not executable, bad interpreter line, missing file
            raise UserScriptError("cannot start {} in {}: {}".format(spec.argv[0], spec.cwd, e.strerror or e),
                                  exit_code=126 if isinstance(e, PermissionError) or e.errno == 8 else 127) from e
        child = Child(spec, popen, self.events, self._stdout, self._stderr)
        self.children.append(child)
        return child

    def scratch(self):
        """A private temporary directory (for status files), removed by ``remove_scratch``."""
        if self._scratch is None:
            import tempfile

            self._scratch = tempfile.mkdtemp(prefix="mx-training-")
        return self._scratch

    def remove_scratch(self):
        if self._scratch is not None:
            import shutil

            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def post(self, event):
        """For other threads (the cross-host channel): put an event in the loop's queue."""
        self.events.put(event)

    def next_event(self, timeout=None):
        """The next event, or None after ``timeout`` seconds. Raises ``Terminated`` (within 0.1 s)
        once the launcher has received SIGTERM or SIGINT."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._loop():
            while True:
                if self.stop_request.signum is not None:
                    raise Terminated(self.stop_request.signum)
                step = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
                if step <= 0:
                    return None
                try:
                    event = self.events.get(timeout=step)
                except queue.Empty:
                    continue
                if self.stop_request.signum is not None:  # our own stop explains whatever happened
                    raise Terminated(self.stop_request.signum)
                return event

    def run_one(self, spec):
        """Run ``spec`` (a helper such as pip) to its end -> its ``JobResult`` (see ``_run_one``)."""
        with self._loop():
            return self._run_one(spec)

    def run(self, specs, linger=60.0, channel=None):
        """Run this host's processes -> list of ``JobResult`` (see ``_run``)."""
        with self._loop():
            return self._run(specs, linger, channel)

    @contextlib.contextmanager
    def _loop(self):
        # While the loop runs, a signal is only recorded; ``next_event`` raises it at a safe point.
        stop = self.stop_request
        waiting, stop.waiting = stop.waiting, True
        try:
            if stop.signum is not None:
                raise Terminated(stop.signum)
            yield
        finally:
            stop.waiting = waiting

    def _run_one(self, spec):
        """Run ``spec`` (a helper such as pip) to its end, streaming its output -> its ``JobResult``.

        If another host fails meanwhile, the helper is killed and the peer's result returned
        (its ``host`` is not ours). Other events are kept for the job's loop."""
        child = self.start(spec)
        kept = []
        try:
            while True:
                event = self.next_event()
                if event is None:
                    continue
                if event.kind == "exit" and event.extra.get("child") is child:
                    break
                if event.kind == "peer-failed":
                    _signal_group(child.pgid, signal.SIGKILL)
                    child.popen.wait()
                    child.drain(2.0)
                    return event.result
                kept.append(event)
        finally:
            for event in kept:
                self.events.put(event)
        _signal_group(child.pgid, signal.SIGKILL)  # leftovers of a finished helper process
        child.drain(2.0)
        return child.result(self.host)

    def _run(self, specs, linger, channel):
        """Run this host's processes; the worker (last spec) decides. -> list of ``JobResult``.

        The list is empty when the job succeeded; otherwise its first entry is the root cause.
        A parameter-server role that exits before the job's workers are done ends the job, and
        so does a failure reported by another host through ``channel``. Once every worker is
        done, the roles get ``linger`` seconds to exit by themselves, then they are stopped."""
        failed = self._peer_failure_pending()
        if failed is not None:  # another host failed while we were getting ready: start nothing
            return [failed]
        for spec in specs:
            self.start(spec)
        roles = [c for c in self.children if c.spec.role in (SCHEDULER, SERVER)]
        worker_done = False
        all_done = channel is None  # every worker of the job (not only ours) has finished
        early = None  # a role that exited 0 before the workers were done: they may be finishing too
        early_deadline = linger_deadline = None
        while True:
            finished = worker_done and all_done
            if finished and all(c.status is not None for c in roles):
                return []
            if finished and linger_deadline is None:
                linger_deadline = time.monotonic() + linger
            if early is not None and early_deadline is None:
                early_deadline = time.monotonic() + EARLY_EXIT_GRACE
            deadline = linger_deadline if finished else early_deadline
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            event = self.next_event(timeout)
            if event is None:
                if not finished:
                    return self._fail(channel, early.result(self.host, "it exited before the workers finished"))
                log.warning("%s still running %.0f s after the workers finished: stopping them",
                            ", ".join(c.spec.role for c in roles if c.status is None), linger)
                return []
            if event.kind == "peer-failed":
                return [event.result]
            if event.kind == "all-done":
                all_done = True
            elif event.kind == "exit":
                child = event.extra["child"]
                child.drain(0.2)  # at once, unless a descendant still holds its pipes
                if child.status != 0:
                    note = "" if child.spec.role == WORKER or finished else "it exited before the workers finished"
                    return self._fail(channel, child.result(self.host, note))
                if child.spec.role == WORKER:
                    worker_done = True
                    if channel is not None:
                        channel.worker_done()
                elif not finished and early is None:
                    early = child

    def _peer_failure_pending(self):
        """A peer's failure already in the queue (other events stay there), or None."""
        kept, found = [], None
        while found is None:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            if event.kind == "peer-failed":
                found = event.result
            else:
                kept.append(event)
        for event in kept:
            self.events.put(event)
        return found

    @staticmethod
    def _fail(channel, result):
        if channel is not None:
            channel.fail(result)
        return [result]

    def stop(self, signum=signal.SIGTERM):
        """Send ``signum`` to every group, SIGKILL what is left after the grace period, reap all.

        Returns the number of seconds it took."""
        began = time.monotonic()
        groups = {c.pgid for c in self.children}
        live = [g for g in groups if _signal_group(g, signum)]
        signalled = set()

        def orphans_signalled():
            # Processes that left our groups reach us as orphans, some only once their parent
            # has stopped: each gets the signal as soon as it appears.
            orphans = self._orphans()
            for pid in orphans:
                if pid not in signalled:
                    _kill(pid, signum)
                    signalled.add(pid)
            return orphans

        live_orphans = orphans_signalled()
        deadline = began + self.grace
        while (live or live_orphans) and time.monotonic() < deadline:
            time.sleep(0.02)
            self._reap_orphans()
            live = [g for g in live if _signal_group(g, 0)]
            live_orphans = orphans_signalled()
        for g in live:
            log.warning("process group %d did not stop within %.0f s of %s: killing it", g, self.grace,
                        signal.Signals(signum).name)
            _signal_group(g, signal.SIGKILL)
            self.killed_groups.add(g)
        for c in self.children:
            try:
                c.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        # What left our groups reaches us as an orphan once its parent is gone, and an orphan's
        # own children after it: kill and reap (never blocking) until none is left.
        give_up = time.monotonic() + 5.0
        while time.monotonic() < give_up:
            self._reap_orphans()
            orphans = self._orphans()
            if not orphans:
                break
            for pid in orphans:
                _kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        for c in self.children:
            c.drain(1.0)
        self._reap_orphans()
        return time.monotonic() - began

    def _orphans(self):
        """Processes re-parented to us that are not children we started (needs become_subreaper)."""
        ours = {c.popen.pid for c in self.children}
        return [p for p in _children_of(os.getpid()) if p not in ours and not _is_zombie(p)]

    def _reap_orphans(self):
        """Collect orphans that have exited (never waits for one that has not)."""
        ours = {c.popen.pid for c in self.children}
        for pid in _children_of(os.getpid()):
            if pid in ours:
                continue
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def _kill(pid, signum):
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _is_zombie(pid):
    try:
        with open("/proc/{}/stat".format(pid)) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
