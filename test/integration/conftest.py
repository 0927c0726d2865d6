"""Helpers that run the real ``train`` command against temporary base directories."""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest

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
        from mx_training_toolkit import config

        config.write_job(self.base, self.hyperparameters, self.resource_config, self.input_data_config,
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


@pytest.fixture
def job(tmp_path):
    return Job(tmp_path / "ml")


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
