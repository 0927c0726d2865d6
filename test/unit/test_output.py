"""The output path of a child, without processes: forwarders fed by hand, pipes, the tail."""

import io
import os
import random
import threading
import time

import pytest

from mx_training_toolkit import output
from mx_training_toolkit.masking import Masker
from mx_training_toolkit.output import CHUNK, MAX_LINE, TAIL_LINES, Forwarder, Output, Tail, pump

PREFIX = b"[scheduler algo-1] "
# Lines a script may write: empty ones, a \r redraw, \r\n, bytes that are not UTF-8, no final newline.
TEXT = b"epoch 1\n\nloss 0.5\r\n\r 10%|#  |\r 20%|## |\n\xff\xfe raw \x00\n last, no newline"


def prefixed(data, prefix):
    """What per-line prefixing gives for the whole of ``data`` at once."""
    lines = data.split(b"\n")
    out = b"\n".join(prefix + line for line in lines[:-1]) + b"\n" if len(lines) > 1 else b""
    return out + (prefix + lines[-1] if lines[-1] else b"")


def forward(pieces, prefix=b"", pause_after=(), shared=True):
    """Feed ``pieces`` (as successive reads) to one forwarder -> the bytes written. After the
    pieces whose index is in ``pause_after``, the child pauses (what is held back is flushed).
    ``shared``: another (silent) child's pipe is open onto the same output."""
    stream = io.BytesIO()
    out = Output(stream)
    f = Forwarder(out, prefix)
    if shared:
        Forwarder(out, b"other ")
    for i, piece in enumerate(pieces):
        f.feed(piece)
        if i in pause_after:
            f.flush()
    f.close()  # end of file
    return stream.getvalue()


@pytest.mark.parametrize("shared", [True, False])
def test_prefix_once_per_line_wherever_a_read_cuts_the_text(shared):
    want = prefixed(TEXT, PREFIX)
    for cut in range(len(TEXT) + 1):
        pieces = [TEXT[:cut], TEXT[cut:]]
        assert forward(pieces, PREFIX, shared=shared) == want, cut
        assert forward(pieces, PREFIX, pause_after={0}, shared=shared) == want, cut  # first part shown alone


@pytest.mark.parametrize("shared", [True, False])
def test_prefix_once_per_line_with_reads_cut_twice_and_pauses_between(shared):
    want = prefixed(TEXT, PREFIX)
    for a in range(len(TEXT) + 1):
        for b in range(a, len(TEXT) + 1):
            pieces = [TEXT[:a], TEXT[a:b], TEXT[b:]]
            assert forward(pieces, PREFIX, pause_after={0, 1}, shared=shared) == want, (a, b)
            assert forward(pieces, PREFIX, shared=shared) == want, (a, b)


def test_prefix_with_single_byte_reads():
    pieces = [TEXT[i:i + 1] for i in range(len(TEXT))]
    assert forward(pieces, PREFIX) == forward(pieces, PREFIX, shared=False) == prefixed(TEXT, PREFIX)


def test_unprefixed_output_is_byte_exact_for_any_reads():
    rng = random.Random(5)
    data = rng.randbytes(300000) + b"\n" + TEXT
    for _ in range(20):
        pieces, at = [], 0
        while at < len(data):
            n = rng.choice((1, 7, 100, 4096, CHUNK, 3 * CHUNK))
            pieces.append(data[at:at + n])
            at += n
        pauses = {i for i in range(len(pieces)) if rng.random() < 0.3}
        assert forward(pieces, pause_after=pauses) == data
        assert forward(pieces, pause_after=pauses, shared=False) == data


def test_alone_on_its_stream_a_child_is_written_as_it_is_read():
    stream = io.BytesIO()
    f = Forwarder(Output(stream))
    f.feed(b"whole\n\r 10%")
    assert stream.getvalue() == b"whole\n\r 10%" and f.held_since is None


def test_on_a_shared_stream_an_unfinished_line_waits_for_its_rest_but_not_beyond_a_chunk():
    stream = io.BytesIO()
    out = Output(stream)
    f, other = Forwarder(out), Forwarder(out)
    f.feed(b"whole\npart")
    assert stream.getvalue() == b"whole\n"
    assert f.held_since is not None
    f.feed(b" of it\n")
    assert stream.getvalue() == b"whole\npart of it\n" and f.held_since is None
    f.feed(b"x" * (CHUNK + 1))  # a line longer than a chunk is written as it comes: memory stays bounded
    assert stream.getvalue().endswith(b"x" * (CHUNK + 1))
    f.feed(b"more")
    assert stream.getvalue().endswith(b"x" * (CHUNK + 1))
    other.close()  # alone again: nothing is held back
    f.feed(b" and more")
    assert stream.getvalue().endswith(b"x" * (CHUNK + 1) + b"more and more")


def test_sources_sharing_a_stream_do_not_cut_into_each_others_lines():
    stream = io.BytesIO()
    shared = Output(stream)
    a, b = Forwarder(shared, b"a | "), Forwarder(shared, b"b | ")
    a.feed(b"one\ntw")
    b.feed(b"uno\nd")
    a.feed(b"o\n")  # a's line was held back: it comes whole
    b.flush()  # b paused in mid-line: its start is shown ...
    a.feed(b"three\n")  # ... and ended when another source writes
    b.feed(b"os\n")  # its rest starts a line of its own, prefixed again
    assert stream.getvalue() == b"a | one\nb | uno\na | two\nb | d\na | three\nb | os\n"


def test_unprefixed_source_interrupted_by_a_prefixed_one():
    stream = io.BytesIO()
    shared = Output(stream)
    worker, server = Forwarder(shared), Forwarder(shared, b"[server algo-1] ")
    worker.feed(b"\r 10%")
    worker.flush()
    server.feed(b"ready\n")
    worker.feed(b"\r 20%\n")
    assert stream.getvalue() == b"\r 10%\n[server algo-1] ready\n\r 20%\n"


def test_output_writes_to_a_file_descriptor():
    r, w = os.pipe()
    with os.fdopen(r, "rb") as reader, os.fdopen(w, "wb") as stream:
        f = Forwarder(Output(stream), b"p ")
        f.feed(b"a\nb")
        f.flush()
        stream.close()
        assert reader.read() == b"p a\np b"


def _pump_in_thread(prefix=b""):
    r, w = os.pipe()
    stream = io.BytesIO()
    f = Forwarder(Output(stream), prefix, Tail())
    thread = threading.Thread(target=pump, args=(r, f), daemon=True)
    thread.start()
    return w, stream, f, thread, r


def test_pump_shows_a_partial_line_while_the_writer_still_holds_the_pipe():
    w, stream, f, thread, r = _pump_in_thread()
    try:
        os.write(w, b"\r 10%|#")
        deadline = time.monotonic() + 10
        while stream.getvalue() != b"\r 10%|#" and time.monotonic() < deadline:
            time.sleep(0.005)
        assert stream.getvalue() == b"\r 10%|#"
        os.write(w, b"\r 20%|##\n")
    finally:
        os.close(w)
    thread.join(10)
    os.close(r)
    assert not thread.is_alive()
    assert stream.getvalue() == b"\r 10%|#\r 20%|##\n"


def test_pump_copies_everything_up_to_end_of_file():
    data = random.Random(3).randbytes(1 << 20) + b"no newline at the end"
    w, stream, f, thread, r = _pump_in_thread(b"")

    def write():
        for at in range(0, len(data), 10000):
            os.write(w, data[at:at + 10000])
        os.close(w)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(30)
    thread.join(30)
    os.close(r)
    assert stream.getvalue() == data
    assert list(f.tail)[-1] == data.rsplit(b"\n", 1)[-1].decode("utf-8", "replace")


# --- the tail -----------------------------------------------------------------------------------


def expected_tail(data):
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return [output.utf8_head(line, MAX_LINE).decode("utf-8", "replace") for line in lines[-TAIL_LINES:]]


def fed(data, sizes, **kwargs):
    tail = Tail(**kwargs)
    at, i = 0, 0
    while at < len(data):
        n = sizes[i % len(sizes)]
        tail.feed(data[at:at + n])
        at, i = at + n, i + 1
    return list(tail)


def test_tail_is_the_last_lines_exactly():
    rng = random.Random(11)
    lines = [rng.randbytes(rng.choice((0, 5, 80, 2000, 5000))).replace(b"\n", b".") for _ in range(500)]
    data = b"\n".join(lines)
    for ending in (b"\n", b"", b"last without newline"):
        whole = data + ending
        for sizes in ((1 << 20,), (1, 3, 977), (CHUNK,), (10, 70000)):
            assert fed(whole, sizes) == expected_tail(whole)
            assert fed(whole, sizes, window=100) == expected_tail(whole)  # split into lines often


def test_tail_of_short_streams():
    assert list(Tail()) == []
    assert fed(b"\n", (1,)) == [""]
    assert fed(b"a", (1,)) == ["a"]
    assert fed(b"a\r\nb\n\n", (2,)) == ["a\r", "b", ""]
    assert fed(b"caf\xc3\xa9 \xff\n", (4,)) == ["caf\u00e9 \ufffd"]


def test_tail_of_a_50_mb_line_is_exact_and_small():
    tail = Tail()
    tail.feed(b"before\n")
    piece = b"x" * CHUNK
    for _ in range(50 * (1 << 20) // CHUNK):
        tail.feed(piece)
        assert tail._pending_size < output.TAIL_WINDOW and len(tail._partial) <= MAX_LINE
    tail.feed(b"\nafter 1\nafter 2")
    assert list(tail) == ["before", "x" * MAX_LINE, "after 1", "after 2"]
    assert all(len(line) <= MAX_LINE for line in tail._lines)


def test_tail_can_be_read_while_it_is_fed():
    tail = Tail(window=50)
    tail.feed(b"one\ntw")
    assert list(tail) == ["one", "tw"]
    tail.feed(b"o\nthree\n")
    assert list(tail) == ["one", "two", "three"]


# --- the tail masks before it cuts (docs/contract.md section 6) ----------------------------------

@pytest.mark.parametrize("data,size,head", [
    (b"abc", 5, b"abc"),
    (b"abcdef", 3, b"abc"),
    ("ab\u00e9".encode(), 3, b"ab"),  # inside a 2-byte character
    ("ab\u20ac".encode(), 3, b"ab"), ("ab\u20ac".encode(), 4, b"ab"), ("ab\u20ac".encode(), 5, "ab\u20ac".encode()),
    ("a\U0001f600b".encode(), 4, b"a"),  # inside a 4-byte character
    (b"ab\xff\xfe", 3, b"ab\xff"),  # bytes that are no UTF-8 are kept as they are
])
def test_utf8_head_never_ends_inside_a_character(data, size, head):
    assert output.utf8_head(data, size) == head


def _masked_tail(secret, max_line=40):
    masker = Masker({"api_token": secret})
    return Tail(lines=5, max_line=max_line, window=16, mask=masker, reach=lambda: masker.reach)


def test_a_secret_cut_by_the_line_limit_is_masked_whole():
    secret = "t0k3n-" + "9" * 30
    tail = _masked_tail(secret)
    tail.feed(b"a" * 30 + secret.encode() + b" more\nnext\n")
    assert list(tail) == ["a" * 30 + "******** m", "next"]  # masked, then cut to 40 bytes


def test_s7_a_line_cut_inside_a_character_of_a_secret_shows_none_of_it():
    """S7: the cut fell inside a UTF-8 character of the secret; the line ended in U+FFFD and the
    secret's start stayed in clear. The secret is masked before the cut now."""
    secret = "p\u00e4ss\u00e9-\u00fc\u00f6\u00e4-secret"
    for before in range(30, 42):
        tail = _masked_tail(secret)
        tail.feed(b"x" * before + secret.encode() + b"\n")
        (line,) = list(tail)
        assert "p\u00e4" not in line and "\ufffd" not in line, (before, line)
        assert len(line.encode()) <= 40


def test_s7_with_a_secret_longer_than_the_margin_its_cut_start_is_masked():
    secret = "\u00e9" * 30  # 60 bytes
    masker = Masker({"api_token": secret})
    tail = Tail(lines=5, max_line=40, window=16, mask=masker, reach=lambda: 0)  # no margin: the line end is cut
    tail.feed(b"x" * 21 + secret.encode() + b"\n")
    (line,) = list(tail)
    assert line == "x" * 21 + "********" and "\ufffd" not in line


def test_a_multi_line_secret_the_window_starts_inside_is_masked_line_by_line():
    """S2: the tail's window of the last lines starts inside a PEM key printed on stderr."""
    key = "-----BEGIN PRIVATE KEY-----\n" + "\n".join("MIIB{:02d}".format(i) * 10 for i in range(12)) + \
        "\n-----END PRIVATE KEY-----"
    masker = Masker({"private_key": key})
    tail = Tail(lines=5, max_line=4000, window=16, mask=masker, reach=lambda: masker.reach)
    tail.feed(("printed " + key + "\nafter 1\nafter 2\n").encode())
    assert list(tail) == ["********"] * 3 + ["after 1", "after 2"]
    whole = Tail(lines=30, mask=masker, reach=lambda: masker.reach)
    whole.feed(("printed " + key + "\nafter\n").encode())
    assert list(whole) == ["printed ********", "after"]


def test_a_line_shown_unfinished_gets_its_rest_before_another_sources_line():
    """D16: print("hi", host) under PYTHONUNBUFFERED is several writes; when the 20 ms hold expired
    between them, another host's line cut it into two prefixed lines."""
    import threading

    stream = io.BytesIO()
    shared = Output(stream)
    a, b = Forwarder(shared, b"algo-1 | "), Forwarder(shared, b"algo-2 | ")
    a.feed(b"hi")
    a.flush()  # the hold expired: its start is shown
    other = threading.Thread(target=b.feed, args=(b"ready\n",))
    other.start()  # waits for a's line (up to LINE_WAIT) ...
    a.feed(b" algo-1\n")  # ... which ends in time
    other.join()
    assert stream.getvalue() == b"algo-1 | hi algo-1\nalgo-2 | ready\n"


def test_a_line_left_unfinished_longer_than_the_wait_is_cut_as_before():
    stream = io.BytesIO()
    shared = Output(stream)
    a, b = Forwarder(shared, b"a | "), Forwarder(shared, b"b | ")
    a.feed(b"\r 10%")
    a.flush()
    b.feed(b"ready\n")  # a's progress bar never ends its line: b's line comes after LINE_WAIT at most
    assert stream.getvalue() == b"a | \r 10%\nb | ready\n"
