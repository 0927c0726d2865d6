"""What the integration tests share: ``Job`` (a base directory, then the real ``train`` on it),
ports, processes, waiting for events with a deadline, and the two-host jobs of the channel tests.

Test modules import from here, never from each other (``conftest.py`` only holds fixtures)."""

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
RESOURCES = os.path.join(os.path.dirname(HERE), "resources")
SCRIPTS = os.path.join(RESOURCES, "scripts")
_CONSOLE_SCRIPT = os.path.join(os.path.dirname(sys.executable), "train")
# The real console script when the package is installed (it is, in CI); else the same entry point.
TRAIN = ([_CONSOLE_SCRIPT] if os.path.exists(_CONSOLE_SCRIPT)
         else [sys.executable, "-c", "from mx_training_toolkit.training import main; main()"])


@dataclass
class Result:
    """What one run of ``train`` did."""

    returncode: int
    stdout: str
    stderr: str
    base: str

    def _read(self, *parts):
        path = os.path.join(self.base, *parts)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            return f.read()

    @property
    def failure(self):
        return self._read("output", "failure")

    @property
    def failure_first_line(self):
        text = self.failure
        return text.splitlines()[0] if text else None

    @property
    def succeeded(self):
        return os.path.exists(os.path.join(self.base, "output", "success"))


class Job:
    """A base directory under construction: config files, code and data, then ``run()``."""

    def __init__(self, base):
        self.base = str(base)
        self.code_dir = os.path.join(self.base, "code")
        os.makedirs(os.path.join(self.base, "input", "config"), exist_ok=True)
        os.makedirs(self.code_dir, exist_ok=True)
        self.hyperparameters = {}
        self.resource_config = None
        self.input_data_config = None

    def path(self, *parts):
        return os.path.join(self.base, *parts)

    def add_script(self, name, source=None, resource=None):
        """Put a script into code/: given text, or a file from test/resources/scripts."""
        dest = os.path.join(self.code_dir, name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if resource:
            shutil.copy(os.path.join(SCRIPTS, resource), dest)
        else:
            with open(dest, "w") as f:
                f.write(source)
        return dest

    def entry(self, name, **user_hps):
        """Set the entry point and user hyperparameters (JSON-encoded like the SDK does)."""
        self.hyperparameters["sagemaker_program"] = json.dumps(name)
        for k, v in user_hps.items():
            self.hyperparameters[k] = json.dumps(v)
        return self

    def channel(self, name, files=None):
        os.makedirs(self.path("input", "data", name), exist_ok=True)
        for fname, text in (files or {}).items():
            with open(self.path("input", "data", name, fname), "w") as f:
                f.write(text)
        self.input_data_config = dict(self.input_data_config or {})
        self.input_data_config[name] = {"TrainingInputMode": "File"}
        return self

    def write_config(self):
        """Write the config files: the hyperparameters as they are (``entry`` encoded them; tests
        also set raw values), the other two only once set (a file written by hand stays)."""
        from mx_training_toolkit import jobfiles

        jobfiles.write_job(self.base, self.hyperparameters, self.resource_config, self.input_data_config,
                           encode=False)

    def env(self, **extra):
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env["SAGEMAKER_BASE_DIR"] = self.base
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra)
        return env

    def run(self, timeout=120, write=True, **extra_env):
        if write:
            self.write_config()
        proc = subprocess.run(TRAIN, env=self.env(**extra_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        return Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"),
                      self.base)

    def start(self, write=True, **extra_env):
        """Start ``train`` without waiting: returns the Popen (stdout/stderr piped)."""
        if write:
            self.write_config()
        return subprocess.Popen(TRAIN, env=self.env(**extra_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)


def snapshot(directory):
    """Every file under ``directory`` with its content, to show that nothing was changed."""
    out = {}
    for root, _dirs, files in os.walk(directory):
        for name in files:
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, directory)] = f.read()
    return out


def pid_alive(pid):
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open("/proc/{}/stat".format(pid)) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ---- ports, files, processes -------------------------------------------------------------------

MX_TRAIN_SCRIPT = os.path.join(os.path.dirname(sys.executable), "mx-train")
MX_TRAIN = ([MX_TRAIN_SCRIPT] if os.path.exists(MX_TRAIN_SCRIPT)
            else [sys.executable, "-c", "from mx_training_toolkit.local import main; main()"])
PS_CODE = os.path.join(RESOURCES, "ps")


def free_port():
    """A TCP port nobody listens on now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read(root, host, *parts):
    """The text of ``root/host/parts...``, or None when there is no such file."""
    path = os.path.join(root, host, *parts)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read()


def failure_first_line(base):
    """Line 1 of the failure file under the base directory ``base``, or None when there is none."""
    text = read(base, "output", "failure")
    return text.splitlines()[0] if text else None


def wait_until(condition, timeout, step=0.05):
    """Call ``condition()`` until it returns something true or ``timeout`` seconds pass -> its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def wait_gone(pid, timeout=10.0):
    """Whether process ``pid`` is gone (or a zombie) within ``timeout`` seconds."""
    return wait_until(lambda: not pid_alive(pid), timeout)


def processes_with(var, value=None, base=None):
    """pids of processes whose environment has ``var`` (=``value``), under base dir ``base``."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/{}/environ".format(pid), "rb") as f:
                env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        except OSError:
            continue
        if var.encode() not in env or (value is not None and env[var.encode()] != value.encode()):
            continue
        if base is not None and not env.get(b"SAGEMAKER_BASE_DIR", b"").decode().startswith(base):
            continue
        found.append(int(pid))
    return found


def assert_no_process_left(root, var="SAGEMAKER_BASE_DIR", timeout=10.0):
    """Every process whose environment has ``var`` under base dir ``root`` is gone within ``timeout`` s
    (the launchers have exited: what they started is being reaped)."""
    left = wait_until(lambda: not processes_with(var, base=root), timeout)
    assert left, processes_with(var, base=root)


def read_until(pipe, marker, timeout=60.0):
    """Read ``pipe`` (a Popen's stdout or stderr) until ``marker`` shows up -> everything read.
    Fails when the pipe closes or ``timeout`` seconds pass first. Reads the file descriptor itself,
    so ``Popen.communicate`` can read on afterwards."""
    got = b""
    deadline = time.monotonic() + timeout
    while marker not in got:
        left = deadline - time.monotonic()
        assert left > 0, "no {!r} within {} s; got: {!r}".format(marker, timeout, got[-2000:])
        if select.select([pipe], [], [], min(left, 0.5))[0]:
            chunk = os.read(pipe.fileno(), 65536)
            assert chunk, "the pipe closed before {!r}; got: {!r}".format(marker, got[-2000:])
            got += chunk
    return got


def finish(*procs, timeout=180):
    """Wait until every process in ``procs`` has exited (``timeout`` seconds for all of them
    together); whatever still runs then is killed, and the test fails. -> each one's output,
    decoded: its stdout, followed by its stderr when that was piped apart."""
    outputs = [None] * len(procs)

    def collect(i, proc):
        out, err = proc.communicate()
        outputs[i] = (out or b"").decode(errors="replace") + (err or b"").decode(errors="replace")

    threads = [threading.Thread(target=collect, args=(i, p), daemon=True) for i, p in enumerate(procs)]
    deadline = time.monotonic() + timeout
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
    finally:
        late = [p.args for p in procs if p.poll() is None]
        for p in procs:
            if p.poll() is None:
                p.kill()
        for t in threads:
            t.join(10)
    assert not late, "still running after {} s: {}".format(timeout, late)
    return outputs


# ---- two launchers of one job on emulated hosts ------------------------------------------------

ADDRESSES = json.dumps({"algo-1": "127.0.0.2", "algo-2": "127.0.0.3"})


def two_host_jobs(tmp_path, port, script="import time\ntime.sleep(60)\n"):
    """algo-1 and algo-2 of one job (base dirs ``tmp_path/algo-N``), with ``script`` as train.py."""
    jobs = []
    for host in ("algo-1", "algo-2"):
        job = Job(tmp_path / host)
        job.add_script("train.py", script)
        job.entry("train.py")
        job.hyperparameters["_ps_port"] = str(port)
        job.resource_config = {"current_host": host, "hosts": ["algo-1", "algo-2"]}
        jobs.append(job)
    return jobs


def script_waiting_for(path, timeout=120):
    """A train.py that says ``worker ran``, waits until ``path`` exists (the test's go-ahead) and
    exits 0, or exits 9 when it does not appear within ``timeout`` seconds."""
    return ("import os, sys, time\nprint('worker ran', flush=True)\n"
            "deadline = time.monotonic() + {}\n"
            "while not os.path.exists({!r}):\n"
            "    if time.monotonic() > deadline:\n"
            "        sys.exit(9)\n"
            "    time.sleep(0.02)\n".format(timeout, str(path)))


def connect_to_channel(port, source="127.0.0.3", timeout=30.0):
    """A connection to algo-1's channel (port ``port + 1`` on 127.0.0.2) from ``source``, once
    algo-1 listens: retried until it is accepted, for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket()
        s.bind((source, 0))
        try:
            s.connect(("127.0.0.2", port + 1))
            s.settimeout(10)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def read_line(sock):
    """Bytes from ``sock`` up to a newline (or its end)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data
