"""What a script writes, as the real ``train`` passes it on: exact bytes, live partial lines,
nothing lost at a SIGKILL, and the failure file's stderr tail (exact, in bounded memory)."""

import io
import os
import select
import sys
import threading
import time

import pytest

from mx_training_toolkit.outcome import EXIT
from mx_training_toolkit import output
from mx_training_toolkit.output import MAX_LINE
from mx_training_toolkit.plan import ProcessSpec
from mx_training_toolkit.supervisor import Supervisor

MiB = 1 << 20

BINARY = """
import os, random, sys, time
rng = random.Random(7)
data = rng.randbytes(3 * 2 ** 20) + b"\\r 10%|\\xff\\xfe not UTF-8, no final newline"
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "expected.bin"), "wb") as f:
    f.write(data)
out = sys.stdout.buffer
at = 0
while at < len(data):
    n = rng.choice((1, 10, 4096, 65536, 200000))
    out.write(data[at:at + n])
    out.flush()
    if rng.random() < 0.05:
        time.sleep(0.03)  # a pause in mid-line: what is held back is shown
    at += n
"""

LONG_LINE = """
import sys
sys.stderr.write("before\\n")
sys.stderr.write("x" * (50 * 2 ** 20) + "\\n")
sys.stderr.write("after 1\\nafter 2\\nlast words, no newline")
sys.exit(3)
"""

PROGRESS = """
import os, sys, time
stream = getattr(sys, sys.argv[sys.argv.index("--stream") + 1])
stream.write("\\r 10%|#")
stream.flush()
seen = os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "seen")
deadline = time.monotonic() + 60
while not os.path.exists(seen):  # the test saw the bar on the launcher's output
    if time.monotonic() > deadline:
        sys.exit(9)
    time.sleep(0.01)
stream.write("\\r100%|##########|\\n")
"""

KILLED = """
import os, signal, sys
for i in range(5000):
    sys.stdout.write("line %d %s\\n" % (i, "." * 60))
sys.stdout.write("last line, no newline")
sys.stdout.flush()
sys.stderr.write("stderr's last words, no newline")
sys.stderr.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_stdout_is_byte_exact_for_binary_output_without_a_final_newline(job):
    job.add_script("train.py", BINARY)
    job.entry("train.py")
    proc = job.start()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode(errors="replace")
    with open(job.path("output", "data", "expected.bin"), "rb") as f:
        expected = f.read()
    assert out == expected


def _peak_rss_mib(pid, done):
    """Poll the launcher's own high-water mark (VmHWM) until ``done`` is set -> MiB."""
    peak = 0
    while not done.is_set():
        try:
            with open("/proc/{}/status".format(pid)) as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.005)
    return peak / 1024


def test_the_failure_tail_is_exact_and_memory_bounded_after_a_50_mb_line(job):
    job.add_script("train.py", LONG_LINE)
    job.entry("train.py")
    proc = job.start()
    done, peak = threading.Event(), []
    poller = threading.Thread(target=lambda: peak.append(_peak_rss_mib(proc.pid, done)))
    poller.start()
    try:
        _out, err = proc.communicate(timeout=120)
    finally:
        done.set()
        poller.join()
    assert proc.returncode == 3
    assert b"before\n" + b"x" * (50 * MiB) + b"\nafter 1\nafter 2\nlast words, no newline" in err
    with open(job.path("output", "failure")) as f:
        failure = f.read()
    tail = failure.split("Last lines of its stderr:\n", 1)[1].rstrip("\n").split("\n")
    assert tail == ["before", "x" * MAX_LINE, "after 1", "after 2", "last words, no newline"]
    assert peak[0] < 60, "the launcher held the line: peak RSS {:.0f} MiB".format(peak[0])


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_progress_bar_reaches_the_launchers_output_before_the_script_exits(job, stream):
    job.add_script("train.py", PROGRESS)
    job.entry("train.py", stream=stream)
    proc = job.start()
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    got = b""
    deadline = time.monotonic() + 60
    try:
        while b"\r 10%|#" not in got and time.monotonic() < deadline:
            if select.select([pipe], [], [], 0.5)[0]:
                chunk = os.read(pipe.fileno(), 65536)
                if not chunk:
                    break
                got += chunk
        assert b"\r 10%|#" in got, "the bar did not show while the script ran: {!r}".format(got[-300:])
        open(job.path("output", "data", "seen"), "w").close()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode(errors="replace")
    assert b"\r 10%|#\r100%|##########|\n" in got + (out if stream == "stdout" else err)


def test_output_written_just_before_a_sigkill_is_not_lost(job):
    job.add_script("train.py", KILLED)
    job.entry("train.py")
    proc = job.start()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 137, err.decode(errors="replace")
    expected = "".join("line %d %s\n" % (i, "." * 60) for i in range(5000)) + "last line, no newline"
    assert out.decode() == expected
    assert b"stderr's last words, no newline" in err
    with open(job.path("output", "failure")) as f:
        failure = f.read()
    assert "killed by SIGKILL" in failure.splitlines()[0]
    assert failure.rstrip("\n").endswith("stderr's last words, no newline")


def test_a_parameter_server_role_gets_one_prefix_per_line_through_pauses_and_large_writes(tmp_path):
    # The role writes a line in two parts with a pause between (the first part is shown alone),
    # then more lines than one read takes, then a last line with no newline.
    code = ("import sys, time\n"
            "sys.stdout.write('starting'); sys.stdout.flush(); time.sleep(0.3)\n"
            "sys.stdout.write(' up\\n' + ''.join('node %d\\n' % i for i in range(20000)) + 'end')\n"
            "sys.stderr.write('warning\\nlast')\n")
    stdout, stderr = io.BytesIO(), io.BytesIO()
    supervisor = Supervisor("algo-1", 10.0, stdout=stdout, stderr=stderr)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    child = supervisor.start(ProcessSpec("scheduler", (sys.executable, "-c", code), env, str(tmp_path),
                                         "[scheduler algo-1] "))
    event = supervisor.next_event(60)
    supervisor.stop()
    assert event is not None and event.kind == EXIT and event.result.status == 0
    prefix = b"[scheduler algo-1] "
    lines = [b"starting up"] + [b"node %d" % i for i in range(20000)] + [b"end"]
    assert stdout.getvalue() == b"\n".join(prefix + line for line in lines)
    assert stderr.getvalue() == prefix + b"warning\n" + prefix + b"last"
    assert list(child.tail) == ["warning", "last"]



def test_roles_sharing_the_launchers_stdout_keep_their_lines_whole(tmp_path, monkeypatch):
    # Two roles write at once, each line in two parts, so that reads end in mid-line; yet every
    # line comes out whole, after its own role's prefix. (An unfinished line may wait longer here
    # than it does in a launcher: a loaded machine must not make this test fail.)
    monkeypatch.setattr(output, "PARTIAL_DELAY", 5.0)
    code = ("import os, sys\n"
            "name = sys.argv[1]\n"
            "for i in range(20000):\n"
            "    line = ('%s %d %s\\n' % (name, i, '.' * (i % 150))).encode()\n"
            "    os.write(1, line[:i % 40])  # a line in two writes: a read may end between them\n"
            "    os.write(1, line[i % 40:])\n")
    stdout = io.BytesIO()
    supervisor = Supervisor("algo-1", 10.0, stdout=stdout, stderr=io.BytesIO())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    for role in ("scheduler", "server"):
        supervisor.start(ProcessSpec(role, (sys.executable, "-c", code, role), env, str(tmp_path),
                                     "[{} algo-1] ".format(role)))
    events = [supervisor.next_event(60), supervisor.next_event(60)]
    supervisor.stop()
    assert all(e is not None and e.kind == EXIT and e.result.status == 0 for e in events)
    got = {"scheduler": [], "server": []}
    for line in stdout.getvalue().decode().split("\n")[:-1]:
        role, _, rest = line.partition(" algo-1] ")
        got[role.lstrip("[")].append(rest)
    for role, lines in got.items():
        assert lines == ["%s %d %s" % (role, i, "." * (i % 150)) for i in range(20000)]
