"""Process mechanics: start specs in their own sessions, move their output, reap, stop.

Each child runs in a new session (its own process group) and dies with the launcher if the
launcher itself is SIGKILLed (``PR_SET_PDEATHSIG``). Output threads copy its output in chunks as
it comes (``output``: never blocking the child on a full pipe) and keep the last lines of its
stderr. A waiter thread per child posts its exit to the job's ``Mailbox`` (a ``queue.SimpleQueue``,
whose ``put`` is safe in a signal handler); the decisions are ``jobstate``'s. Orphans
re-parented to the launcher (it is a subreaper) are reaped as they exit (``os.waitid``, no walk of
the process tree), and stopped with the rest at the end: the one walk of the process tree, with
psutil, finds the descendants that left our process groups.
"""

import os
import queue
import signal
import subprocess
import sys
import time

from . import stacks as stacks_mod
from .errors import UserScriptError
from .log import WARNING, get_logger
from .outcome import CHILD, EXIT, Event, JobResult, exit_status
from .output import Forwarder, Output as _Output, Tail, pump
from .roles import WORKER, role_of
from .runner import read_record
from .signals import start_thread

log = get_logger(__name__)

DRAIN_AFTER_EXIT = 0.2  # seconds to finish copying a child's output once it exited (a descendant may hold the pipes)
DRAIN_BUSY_LIMIT = 2.0  # seconds a drain may go on past its timeout while output keeps coming
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


class Child:
    """A started process: its Popen, its stderr tail, its output and waiter threads."""

    def __init__(self, spec, popen, events, stdout, stderr, progress=None):
        self.spec = spec
        self.popen = popen
        self.pgid = popen.pid  # start_new_session: the child leads its own group
        self.tail = Tail()  # the last lines of its stderr, for the failure file
        self.killed = False  # the launcher had to SIGKILL it after the grace period
        self._result = None
        prefix = spec.prefix.encode()
        watches = (progress.pipe_watch(), progress.pipe_watch()) if progress is not None else (None, None)
        self._forwarders = (Forwarder(stdout, prefix, watch=watches[0]),
                            Forwarder(stderr, prefix, self.tail, watches[1]))
        self._threads = [start_thread(self._pump, popen.stdout, self._forwarders[0]),
                         start_thread(self._pump, popen.stderr, self._forwarders[1])]
        start_thread(self._wait, events)

    @staticmethod
    def _pump(pipe, forwarder):
        try:
            pump(pipe.fileno(), forwarder)
        finally:
            pipe.close()

    def _wait(self, events):
        self.popen.wait()
        ended = time.monotonic()  # when it happened, before its output is drained
        self.drain(DRAIN_AFTER_EXIT)
        events.put(Event(EXIT, role=self.spec.role, result=self.result(), child=self, at=ended))

    def drain(self, timeout):
        """Wait until the output threads have copied everything the child wrote (end of file on
        both pipes). Bounded: it gives up on a pipe from which nothing came for ``timeout``
        seconds (a descendant may hold it open, or our own stdout may be blocked), and after
        ``timeout + DRAIN_BUSY_LIMIT`` seconds whatever comes (a descendant that keeps writing)."""
        began = time.monotonic()
        limit = began + timeout + DRAIN_BUSY_LIMIT
        for thread, forwarder in zip(self._threads, self._forwarders):
            while thread.is_alive():
                # Waiting while data still flows: what a script wrote just before it exited may
                # take a moment to copy when our own stdout is slow.
                deadline = min(limit, max(began, forwarder.last_read) + timeout)
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                thread.join(left)

    def result(self):
        """How the child ended (None while it runs). A child that recorded its status (the
        runner, the legacy runner) is judged by its record: MXNet's shutdown may replace it."""
        if self._result is None and self.popen.returncode is not None:
            returncode = self.popen.returncode
            status = exit_status(returncode)
            record = self.spec.status_file and read_record(self.spec.status_file)
            recorded, reason, consequence = record or (0, "", False)
            if returncode == 0:
                status = recorded
            self._result = JobResult(self.spec.role, "", status, (), "", -returncode if returncode < 0 else 0, reason,
                                     self.spec.rank, consequence and status != 0, bool(record))
        return None if self._result is None else self._result._replace(stderr_tail=tuple(self.tail))


def _signal_group(pgid, signum):
    try:
        os.killpg(pgid, signum)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _kill(pid, signum):
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _prctl(option, value):
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper():
    """Ask Linux to re-parent our orphaned descendants to us, so none can outlive the launcher."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def _die_with_parent_hook():
    """A ``preexec_fn`` that makes the child get SIGKILL when the launcher dies, even by SIGKILL
    (the launcher's own stop never gets to run then)."""
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook():
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the launcher died before the setting took effect
            os._exit(137)

    return hook


def _first_exited_child():
    """The pid of a child of ours (a process we started, or an orphan re-parented to us) that has
    exited and is not reaped yet, without reaping it; None when there is none."""
    try:
        info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None
    return None if info is None else info.si_pid


def _has_children():
    """Whether any process (running or exited, ours or an orphan) is still our child."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        return True
    except ChildProcessError:
        return False


class Mailbox:
    """The job's one event queue, and the request to hurry a stop. Made before anything else, so
    that signal handlers (and the launchers' channel) can post to it before the ``Supervisor``
    exists: the supervisor is built once the host it runs on is known."""

    def __init__(self):
        self.events = queue.SimpleQueue()
        self.hurried = False

    def post(self, event):
        """For other threads and signal handlers: put an event in the loop's queue."""
        self.events.put(event)

    def hurry(self):
        """For a signal handler: end a stop under way (or the next one) at once, SIGKILL for all."""
        self.hurried = True


class Supervisor:
    """Runs the processes of host ``host`` and stops them all, with one grace period (``grace``
    seconds, unless a stop names another). This is the process starter ``jobstate.run`` drives:
    ``start``, ``next_event``, ``kill``. Its events come through ``mailbox`` (a new one when None)."""

    def __init__(self, host, grace, mailbox=None, stdout=None, stderr=None, watcher=None, progress=None):
        self.host = host
        self.grace = grace
        self.mailbox = mailbox or Mailbox()
        self.watcher = watcher  # told every child's session (``watcher``): they die with us even by SIGKILL
        self.progress = progress  # the stall watchdog's ``watchdog.HostProgress``: the workers' output goes to it
        self.children = []
        self.stacks = []  # every ``stacks.Dump`` the processes gave (``dump_stacks``), in order
        self._scratch = None
        self._stdout = _Output(stdout or sys.stdout.buffer)
        self._stderr = _Output(stderr or sys.stderr.buffer)
        self._preexec = None

    @property
    def hurried(self):
        return self.mailbox.hurried

    def start(self, spec):
        """Start ``spec`` in its own session, output piped to our reader threads -> ``Child``."""
        if self._preexec is None:
            self._preexec = _die_with_parent_hook() or False
        try:
            popen = subprocess.Popen(
                list(spec.argv), env=dict(spec.env), cwd=spec.cwd, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                preexec_fn=self._preexec or None,
            )
        except OSError as e:  # not executable, bad interpreter line, missing file, environment too large
            message = "cannot start {} in {}: {}".format(spec.argv[0], spec.cwd, e.strerror or e)
            status = 126 if isinstance(e, PermissionError) or e.errno == 8 else 127
            # The failure is the step's whose process this is (roles.TABLE), not always the user script's.
            role = role_of(spec.role, spec.rank)
            if role is None:
                raise UserScriptError(message, exit_code=status) from e
            raise role.cannot_start(message, status) from e
        if self.watcher is not None:
            self.watcher.add(popen.pid)  # its session's id
        progress = self.progress if spec.role == WORKER else None
        if progress is not None:
            progress.begin()
        child = Child(spec, popen, self.mailbox.events, self._stdout, self._stderr, progress)
        self.children.append(child)
        return child

    def post(self, event):
        """``Mailbox.post`` of this supervisor's mailbox."""
        self.mailbox.post(event)

    def next_event(self, timeout=None):
        """The next event for the job's loop (exits with this host's name in their results), or
        None after ``timeout`` seconds. Orphans that exited are reaped on the way."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                if deadline is None:
                    event = self.mailbox.events.get()
                else:
                    event = self.mailbox.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if event.kind == CHILD:
                self.reap_orphans()
                continue
            if event.kind == EXIT:
                event = event._replace(result=event.result._replace(host=self.host))
            return event

    def kill(self, child):
        """SIGKILL a helper's whole group and wait for it."""
        _signal_group(child.pgid, signal.SIGKILL)
        child.popen.wait()
        child.drain(2.0)

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

    def final_result(self, role):
        """The last started child of ``role`` -> (its ``JobResult`` or None while it runs, killed)."""
        child = next((c for c in reversed(self.children) if c.spec.role == role), None)
        if child is None:
            return None, False
        result = child.result()
        return (result._replace(host=self.host) if result else None), child.killed

    def reap_orphans(self):
        """Collect orphans that have exited. Never waits for one that has not, and never touches a
        process we started: its waiter thread reaps it (reaped here, its status would be lost).
        When the first exited child is such a one, the rest wait for the next call (a SIGCHLD, the
        stop's loop): ours are reaped within moments of their exit."""
        while True:
            pid = _first_exited_child()
            if pid is None or any(c.popen.pid == pid and c.popen.returncode is None for c in self.children):
                return
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass

    def send(self, signum):
        """For a signal handler: send ``signum`` to every group now."""
        for c in self.children:
            _signal_group(c.pgid, signum)

    def stop(self, signum=signal.SIGTERM, grace=None, first=(), linger=0.0, lingering=(), stacks_first=False):
        """Stop every group and every stray descendant with one deadline, ``grace`` seconds away
        (default ``self.grace``): send ``signum`` first to the groups of the roles in ``first`` (all
        groups when it is empty); once those have exited, give the groups of the roles in
        ``lingering`` up to ``linger`` seconds to exit by themselves, then send ``signum`` to every
        other group and stray. Shortly before the deadline, ask what is left for its stacks
        (``dump_stacks``, inside the grace); at the deadline (at once after ``hurry``) SIGKILL what
        is left; reap all. ``stacks_first``: ask every process for its stacks before anything.
        Returns the number of seconds it took."""
        began = time.monotonic()
        grace = self.grace if grace is None else grace
        if stacks_first and self.dump_stacks(self.children) and not self.hurried:
            time.sleep(stacks_mod.HOLD)  # the other hosts take theirs meanwhile (see stacks.HOLD)
        deadline = time.monotonic() + grace
        ask = deadline - min(stacks_mod.WAIT, grace / 2)  # when what is left is asked for its stacks
        groups = {c.pgid: c for c in self.children}
        leading = [g for g, c in groups.items() if c.spec.role in first] if first else list(groups)
        live = self._wait([g for g in leading if _signal_group(g, signum)], ask)
        if first and not live and linger:  # every worker exited: servers leave once all have finalised
            waiting = [g for g, c in groups.items() if c.spec.role in lingering and _signal_group(g, 0)]
            self._wait(waiting, min(ask, time.monotonic() + linger))
        live += [g for g in groups if g not in leading and _signal_group(g, signum)]
        tree = _Tree(self) if _has_children() else None  # psutil only when something is left
        if tree is not None:
            tree.signal_strays(signum)
        live = self._wait(live, ask, tree, signum)
        if live and not self.hurried and deadline > time.monotonic():
            self.dump_stacks([groups[g] for g in live], deadline - time.monotonic())
            live = self._wait(live, deadline, tree, signum)
        for g in live:
            if self.hurried:
                log.warning("process group %d: killing it now (a second SIGINT)", g)
            else:
                log.warning("process group %d did not stop within %.0f s of %s: killing it", g, grace,
                            signal.Signals(signum).name)
            _signal_group(g, signal.SIGKILL)
            groups[g].killed = True
        for c in self.children:
            try:
                c.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if tree is not None:
            tree.kill_all()
        for c in self.children:
            c.drain(1.0)
        self.reap_orphans()
        return time.monotonic() - began

    def dump_stacks(self, children, wait=stacks_mod.WAIT):
        """Ask each of ``children`` that still runs and armed the stack dumper (``stacks``) for the
        stacks of its threads, and wait up to ``wait`` seconds for them to arrive -> the
        ``stacks.Dump`` of each, logged and kept in ``stacks``."""
        asked = []
        for child in sorted(children, key=lambda c: c.spec.role != WORKER):  # the workers' stacks first
            path = child.spec.stacks_file
            if not path or child.popen.returncode is not None:
                continue
            offset = stacks_mod.size(path)
            try:
                child.popen.send_signal(stacks_mod.SIGNAL)
            except OSError:
                continue
            asked.append((child, path, offset))
        if not asked:
            return []
        deadline = time.monotonic() + max(0.0, min(wait, stacks_mod.WAIT))
        seen = {path: (offset, time.monotonic()) for _c, path, offset in asked}  # path -> (size, when it changed)
        while time.monotonic() < deadline and not self.hurried:
            now = time.monotonic()
            for _child, path, _offset in asked:
                size = stacks_mod.size(path)
                if size != seen[path][0]:
                    seen[path] = (size, now)
            # Complete once each file grew and then stayed the same for QUIET seconds.
            if all(seen[path][0] > offset and now - seen[path][1] >= stacks_mod.QUIET for _c, path, offset in asked):
                break
            time.sleep(0.01)
        dumps = []
        for child, path, offset in asked:
            who = stacks_mod.describe(child.spec.role, child.spec.rank, self.host, child.popen.pid)
            dump = stacks_mod.Dump(who, stacks_mod.read_from(path, offset))
            log.log(WARNING, "stacks of {}:\n{}".format(who, dump.text or stacks_mod.NONE_CAME.format(stacks_mod.WAIT)))
            dumps.append(dump)
        self.stacks.extend(dumps)
        return dumps

    def _wait(self, live, deadline, tree=None, signum=0):
        """Wait until the groups ``live`` (and the strays of ``tree``, which get ``signum`` as they
        appear) are gone, or ``deadline``, or ``hurry`` -> the groups still alive."""
        while (live or (tree and tree.strays_alive())) and time.monotonic() < deadline and not self.hurried:
            time.sleep(0.02)
            self.reap_orphans()
            live = [g for g in live if _signal_group(g, 0)]
            if tree is not None:
                tree.signal_strays(signum)
        return [g for g in live if _signal_group(g, 0)]


class _Tree:
    """Our descendants at stop time (psutil), for those that left our process groups: a daemon
    in its own session, and what an orphan started. Each gets the stop signal as soon as it
    appears; what is left after the grace period gets SIGKILL and is reaped."""

    def __init__(self, supervisor):
        import psutil  # about 30 ms: only when a stop has something to clean up

        self._psutil = psutil
        self._supervisor = supervisor
        self._me = psutil.Process()
        self._signalled = set()

    def _strays(self):
        groups = {c.pgid for c in self._supervisor.children}
        found = []
        for proc in self._me.children(recursive=True):
            try:
                if proc.status() != self._psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) not in groups:
                    found.append(proc)
            except (self._psutil.Error, ProcessLookupError):
                pass
        return found

    def signal_strays(self, signum):
        for proc in self._strays():
            if proc.pid not in self._signalled:
                self._signalled.add(proc.pid)
                _kill(proc.pid, signum)

    def strays_alive(self):
        return bool(self._strays())

    def kill_all(self):
        """SIGKILL every descendant that is left and reap the orphans among them (5 s at most)."""
        give_up = time.monotonic() + 5.0
        while time.monotonic() < give_up:
            self._supervisor.reap_orphans()
            alive = [p for p in self._me.children(recursive=True) if _running(p, self._psutil)]
            if not alive:
                return
            for proc in alive:
                _kill(proc.pid, signal.SIGKILL)
            time.sleep(0.02)


def _running(proc, psutil):
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
