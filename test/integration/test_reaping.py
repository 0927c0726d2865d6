"""The supervisor reaps the orphans re-parented to the launcher (without it they stay zombies), while
the process it started keeps its own exit status. Run in a fresh interpreter that becomes a
subreaper, as ``train`` does: the test process itself must not become one."""

import subprocess
import sys

SCRIPT = r"""
import io, os, sys, time
from mx_training_toolkit.outcome import EXIT
from mx_training_toolkit.plan import ProcessSpec
from mx_training_toolkit.supervisor import Supervisor, become_subreaper

# The worker starts a grandchild that exits as soon as the worker is gone (an orphan of ours by
# then), writes the grandchild's pid to argv[1] and exits 7.
WORKER = (
    "import os, sys\n"
    "r, w = os.pipe()\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.close(w)\n"
    "    os.read(r, 1)\n"  # end of file: the worker has exited
    "    os._exit(0)\n"
    "open(sys.argv[1], 'w').write(str(pid))\n"
    "sys.exit(7)\n"
)


def state(pid):
    try:
        with open("/proc/{}/stat".format(pid)) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


assert become_subreaper()
supervisor = Supervisor("algo-1", 5.0, stdout=io.BytesIO(), stderr=io.BytesIO())
pid_file = os.path.abspath("orphan.pid")
supervisor.start(ProcessSpec("worker", (sys.executable, "-c", WORKER, pid_file), dict(os.environ), os.getcwd()))
event = None
while event is None:  # reaping all the time while the worker exits: its own status must survive
    supervisor.reap_orphans()
    event = supervisor.next_event(0.001)
assert event.kind == EXIT, event
orphan = int(open(pid_file).read())
deadline = time.monotonic() + 20
while state(orphan) != "gone" and time.monotonic() < deadline:  # a zombie of ours until reaped
    supervisor.reap_orphans()
    time.sleep(0.01)
print("worker", event.result.host, event.result.status, "orphan", state(orphan))
"""


def test_orphans_are_reaped_and_our_own_children_keep_their_status(tmp_path):
    path = tmp_path / "reap.py"
    path.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(path)], cwd=str(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, timeout=60, text=True)
    assert (result.returncode, result.stdout) == (0, "worker algo-1 7 orphan gone\n"), result.stderr
