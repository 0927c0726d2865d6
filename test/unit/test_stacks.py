"""The stacks a process writes when asked: what the launcher keeps of them, and how it shows them."""

import os

from mx_training_toolkit import stacks

RUNNER = os.path.join(os.path.dirname(stacks.__file__), "runner.py")
DUMP = """Current thread 0x00007f32835ddb80 (most recent call first):
  File "/opt/ml/code/train.py", line 18 in <module>
  File "{runner}", line 179 in run_path
  File "<frozen importlib._bootstrap>", line 241 in _call_with_frames_removed
  File "<string>", line 6 in <module>
""".format(runner=RUNNER)


def test_a_dump_is_read_from_where_it_began_without_the_frames_that_started_the_script(tmp_path):
    path = tmp_path / "stacks-worker"
    path.write_text("an earlier dump\n" + DUMP)
    assert stacks.read_from(str(path), len("an earlier dump\n")) == (
        'Current thread 0x00007f32835ddb80 (most recent call first):\n  File "/opt/ml/code/train.py", line 18 '
        'in <module>')
    assert stacks.read_from(str(tmp_path / "missing"), 0) == ""


def test_a_long_dump_is_cut(tmp_path):
    path = tmp_path / "stacks-worker"
    path.write_text("x" * 100)
    assert stacks.read_from(str(path), 0, limit=10) == "x" * 10 + "\n... [cut]"


def test_the_failure_files_block_names_each_process():
    dumps = [stacks.Dump(stacks.describe("worker", 1, "algo-2", 42), "Thread A"),
             stacks.Dump(stacks.describe("server", None, "algo-2", 43), "")]
    assert stacks.text(dumps, "algo-2") == (
        "Stacks of the job's processes on algo-2 (asked with SIGQUIT):\n"
        "--- worker (rank 1) on algo-2, pid 42 ---\nThread A\n"
        "--- server on algo-2, pid 43 ---\n"
        "(no stacks came within 2 s: the process may be stopped, or in the kernel)")
    assert stacks.text([], "algo-2") == ""
