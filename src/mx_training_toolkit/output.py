"""Copying a child's output to the launcher's own stdout and stderr as it comes.

One thread per pipe (``pump``) reads whatever the pipe holds, up to ``CHUNK`` bytes at once, and
hands it to the pipe's ``Forwarder``, which writes it on with one system call: no per-line reads,
writes or flushes. When several processes write to one of the launcher's streams at once (the
parameter-server roles beside the worker, the hosts of ``mx-train``), the unfinished line at the
end of a read waits for its rest (at most ``PARTIAL_DELAY`` seconds, at most ``CHUNK`` bytes), so
that they do not cut into each other's lines while a progress bar redrawn with ``\\r`` still shows;
once it is shown unfinished, the other sources' lines wait for its end up to ``LINE_WAIT`` seconds
after it was shown (a line printed in several writes by a busy child stays one line), then cut it.

Without a prefix (the user's script) the bytes go on unchanged. With one (``[server algo-1] ``,
``algo-1 | ``) every line gets it once, wherever the reads cut the lines. A ``Tail`` keeps the last
lines of a stream (its stderr, for the failure file) in bounded memory, and masks the job's
secrets in them before it cuts them (``masking``).
"""

import collections
import fcntl
import os
import select
import threading
import time

from . import masking

CHUNK = 65536  # the most one read takes from a pipe, and the most an unfinished line is held back
PARTIAL_DELAY = 0.02  # seconds an unfinished line waits for its end before it is written as it is
LINE_WAIT = 0.25  # seconds other sources' lines then wait for that line's end before they cut it
SMALL_READ = 4096  # a read smaller than this emptied the pipe: the child writes in small pieces ...
COALESCE = 0.001  # ... so let them gather this long (seconds) before the next read
PIPE_SIZE = 1 << 20  # the buffer asked for on a child's pipes: a child writing fast blocks less often
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux's number, for Pythons before 3.10
NEWLINE = ord("\n")
TAIL_LINES = 60
MAX_LINE = 4000  # bytes of a line the tail shows (its start, cut at a character's boundary)
MAX_MARGIN = 65536  # at most this many bytes more are kept per line, to mask a secret the cut would split
TAIL_WINDOW = 32768  # bytes the tail gathers before it splits them (joined, under malloc's mmap threshold)


class Output:
    """One of the launcher's own streams, shared by the forwarders of every child that writes to it."""

    def __init__(self, stream):
        self._stream = stream
        try:
            self._fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # an in-memory stream (tests)
            self._fd = None
        self._lock = threading.Condition()
        self._open = None  # the forwarder whose last write here left its line unfinished
        self._open_since = 0.0  # when that line was left unfinished
        self._writers = 0  # forwarders attached and not closed

    def attach(self):
        """Count one more forwarder writing here (until its ``close``)."""
        with self._lock:
            self._writers += 1

    def detach(self):
        with self._lock:
            self._writers -= 1

    @property
    def shared(self):
        """Whether more than one child's pipe is open onto this stream."""
        return self._writers > 1

    def write(self, source, data, end=None):
        """Write ``data[:end]`` (all of ``data`` by default) for ``source`` (a ``Forwarder``), each
        of its lines prefixed once with ``source.prefix``; ``data[end:]`` must hold no newline. An
        unfinished line of another source is ended first, and its rest then starts a line of its
        own, prefixed again."""
        end = len(data) if end is None else end
        if not end:
            return
        ends_line = data[end - 1] == NEWLINE
        with self._lock:
            if self._open is not None and self._open is not source:
                # Another source's line is unfinished (its start was shown after PARTIAL_DELAY): give
                # its rest until LINE_WAIT after it was left so, rather than cut it in two.
                self._lock.wait_for(lambda: self._open is None or self._open is source,
                                    self._open_since + LINE_WAIT - time.monotonic())
            pieces = []
            if self._open is not None and self._open is not source:
                pieces.append(b"\n")
                self._open.mid_line = False
            if source.prefix:
                if not source.mid_line:
                    pieces.append(source.prefix)
                # One pass over the data; the held-back rest has no newline, so it is not changed,
                # and a prefix after the last newline belongs to the next line: both are cut off.
                body = data.replace(b"\n", source.newline_prefix)
                stop = len(body) - (len(data) - end) - (len(source.prefix) if ends_line else 0)
                pieces.append(memoryview(body)[:stop])
            else:
                pieces.append(memoryview(data)[:end])
            source.mid_line = not ends_line
            if ends_line:
                self._open = None
                self._lock.notify_all()
            elif self._open is not source:
                self._open, self._open_since = source, time.monotonic()
            self._send(pieces)

    def _send(self, pieces):
        try:
            self._stream.flush()  # anything the launcher wrote through the stream itself comes first
            if self._fd is None:
                for piece in pieces:
                    self._stream.write(piece)
                self._stream.flush()
            else:
                _write_all(self._fd, pieces)
        except (OSError, ValueError):
            pass  # our own stream went away: keep draining the children anyway


def _write_all(fd, pieces):
    """Write ``pieces`` (bytes-like) to ``fd`` in order, with as few system calls as it takes."""
    views = [memoryview(piece) for piece in pieces if len(piece)]
    while views:
        try:
            written = os.writev(fd, views)
        except BlockingIOError:  # another process made the stream we share non-blocking
            select.select((), (fd,), ())
            continue
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if written:
            views[0] = views[0][written:]


class Forwarder:
    """What one of a child's pipes becomes on one of the launcher's streams (an ``Output``)."""

    def __init__(self, output, prefix=b"", tail=None, watch=None):
        self.output = output
        self.watch = watch  # called with each read (the stall watchdog's ``watchdog.PipeWatch``), or None
        self.prefix = prefix
        self.newline_prefix = b"\n" + prefix
        self.tail = tail
        self.mid_line = False  # part of the current line is written already: its rest gets no prefix
        self.last_read = time.monotonic()  # when the pump last read (the drain waits while data flows)
        self.held_since = None  # since when ``_held`` is not empty
        self._held = b""  # the unfinished last line of what was read, not written yet
        output.attach()

    def feed(self, data):
        """Take ``data`` as read from the pipe and write it on; while the output is shared, an
        unfinished last line is held back (until ``flush``, or written anyway once it is
        ``CHUNK`` bytes long)."""
        now = time.monotonic()
        self.last_read = now
        if self.tail is not None:
            self.tail.feed(data)
        if self.watch is not None:
            self.watch(data)
        if self._held:
            data = self._held + data
        end = data.rfind(b"\n") + 1 if self.output.shared else len(data)
        if len(data) - end >= CHUNK:
            end = len(data)
        if end:
            self.output.write(self, data, end)
            self.held_since = now if end < len(data) else None
        elif self.held_since is None:
            self.held_since = now
        self._held = data[end:]

    def flush(self):
        """Write the unfinished line held back (the child paused in mid-line, or its pipe ended)."""
        if self._held:
            self.output.write(self, self._held)
            self._held = b""
        self.held_since = None

    def close(self):
        """The pipe ended: write what is held, and stop counting as one of the output's writers."""
        self.flush()
        self.output.detach()


def widen(fd):
    """Ask for a ``PIPE_SIZE`` buffer on the pipe ``fd`` -> the size it has now (0: unknown). The
    system may refuse (a user's pipes have a limit): the pipe then keeps its 64 KiB."""
    try:
        return fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE)
    except OSError:
        return 0


def pump(fd, forwarder):
    """Copy the pipe ``fd`` through ``forwarder`` until end of file, i.e. until the child and
    every descendant that shares the pipe have closed it."""
    # Pausing after a small read spares a wake-up (a read, a write) for each of a script's small
    # writes. Only on a wide pipe: it takes what even a fast writer writes meanwhile, where 64 KiB
    # would fill in well under a millisecond and block the writer.
    coalesce = COALESCE if widen(fd) >= PIPE_SIZE else 0.0
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    try:
        while True:
            if forwarder.held_since is not None:
                left = forwarder.held_since + PARTIAL_DELAY - time.monotonic()
                if left <= 0 or not poller.poll(int(left * 1000) + 1):
                    forwarder.flush()
            data = os.read(fd, CHUNK)
            if not data:
                break
            forwarder.feed(data)
            if coalesce and len(data) < SMALL_READ:
                time.sleep(coalesce)
    finally:
        forwarder.last_read = time.monotonic()
        forwarder.close()


def whole_chars(data):
    """``data`` (UTF-8) without a character cut short at its end (which would read as U+FFFD)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: its character started further back
            continue
        if 0xC0 <= byte < 0xF8:  # the lead byte of a character of 2, 3 or 4 bytes
            return data[:-back] if (2 if byte < 0xE0 else 3 if byte < 0xF0 else 4) > back else data
        return data
    return data


def utf8_head(data, size):
    """The first ``size`` bytes of ``data`` (UTF-8), fewer when that would end inside a character."""
    return data if len(data) <= size else whole_chars(data[:size])


class Tail:
    """The last ``TAIL_LINES`` lines of a stream, without their newlines, each cut to its first
    ``MAX_LINE`` bytes, an unfinished last line included. Iterating gives them as text, masked
    (``mask``, by default the job's ``masking.mask``) before they are cut: each line is kept with
    a margin of the longest secret's length (``masking.reach``), the lines are masked, then cut to
    ``MAX_LINE`` bytes at a character's boundary. A secret of several lines is masked line by
    line too (``masking.Masker``), so a window that starts inside it shows none of it. Feeding is
    cheap (what is fed is split into lines only every ``TAIL_WINDOW`` bytes, and only its last lines
    are looked at) and the memory is bounded whatever the stream holds; safe to read while another
    thread feeds it."""

    def __init__(self, lines=TAIL_LINES, max_line=MAX_LINE, window=TAIL_WINDOW, mask=None, reach=None):
        self._lines = collections.deque(maxlen=lines)  # complete lines (bytes)
        self._max_line = max_line
        self._window = window
        self._mask = mask or masking.mask
        self._reach = reach or masking.reach
        self._partial = b""  # the start of the unfinished line before ``_pending``
        self._pending = []  # what was fed since the last split
        self._pending_size = 0
        self._lock = threading.Lock()

    def feed(self, data):
        with self._lock:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size >= self._window:
                self._split()

    def _split(self):
        data = b"".join(self._pending)  # no copy when one read filled the window
        self._pending.clear()
        self._pending_size = 0
        cap = self._max_line + min(self._reach(), MAX_MARGIN)
        if data.rfind(b"\n") < 0:  # the line goes on: only its start is kept
            if len(self._partial) < cap:
                self._partial += data[:cap - len(self._partial)]
            return
        pieces = data.rsplit(b"\n", self._lines.maxlen)  # scans back only over the lines kept
        first = pieces[0]
        start = first.rfind(b"\n") + 1  # only when more lines ended than the tail keeps
        self._lines.append(first[start:start + cap] if start else (self._partial + first[:cap])[:cap])
        self._lines.extend(piece[:cap] for piece in pieces[1:-1])
        self._partial = pieces[-1][:cap]

    def __iter__(self):
        with self._lock:
            self._split()
            lines = list(self._lines) + [self._partial] if self._partial else list(self._lines)
            kept = self._max_line + min(self._reach(), MAX_MARGIN)
        if not lines:
            return iter([])
        # Masked first: a line cut at ``kept`` bytes loses no half character, so that its end,
        # when it is the start of a secret, is masked too (``Masker`` masks a line's cut end).
        # Undecodable bytes stay themselves (surrogateescape) until the cut, which counts bytes.
        text = "\n".join((whole_chars(line) if len(line) >= kept else line).decode("utf-8", "surrogateescape")
                         for line in lines[-self._lines.maxlen:])
        masked = self._mask(text).split("\n")[-self._lines.maxlen:]
        return iter([utf8_head(line.encode("utf-8", "surrogateescape"), self._max_line).decode("utf-8", "replace")
                     for line in masked])
