"""Pipe-mode channels: their FIFOs belong to the platform and the user's code, never the launcher."""

import json
import os
import threading

# What the legacy script reports: its keyword arguments and what SM_CHANNEL_TRAIN says.
LEGACY_SCRIPT = """import json, os

def train(channel_input_dirs, hyperparameters, output_data_dir):
    with open(os.path.join(output_data_dir, "seen.json"), "w") as f:
        json.dump({"channel_input_dirs": channel_input_dirs, "hyperparameters": hyperparameters,
                   "sm_channel_train": os.environ["SM_CHANNEL_TRAIN"],
                   "sm_channels": os.environ["SM_CHANNELS"]}, f)
"""

SCRIPT = """import json, os
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "seen.json"), "w") as f:
    json.dump({"sm_channel_train": os.environ["SM_CHANNEL_TRAIN"], "sm_channels": os.environ["SM_CHANNELS"]}, f)
"""

DATA = b"records the platform streams\n" * 100


class FifoWriter(threading.Thread):
    """Writes ``DATA`` into a FIFO the way the platform feeds a Pipe channel: ``open`` blocks until
    some process opens the FIFO for reading, so while this thread is alive nobody has."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path

    def run(self):
        with open(self.path, "wb") as f:
            f.write(DATA)


def _pipe_job(job, script, name):
    """A job whose channel ``train`` is in Pipe mode, with the platform's first FIFO ``train_0``."""
    job.add_script(name, script)
    job.entry(name, epochs=2)
    job.input_data_config = {"train": {"TrainingInputMode": "Pipe"}}
    os.makedirs(job.path("input", "data"), exist_ok=True)
    fifo = job.path("input", "data", "train_0")
    os.mkfifo(fifo)
    writer = FifoWriter(fifo)
    writer.start()
    return fifo, writer


def _assert_fifo_untouched(fifo, writer):
    assert writer.is_alive(), "something opened the FIFO for reading"
    with open(fifo, "rb") as f:  # now be the reader the platform waits for: every byte is still there
        assert f.read() == DATA
    writer.join(5)


def test_legacy_train_gets_no_input_dir_for_a_pipe_channel(job):
    fifo, writer = _pipe_job(job, LEGACY_SCRIPT, "legacy_pipe.py")
    result = job.run(timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "mode: legacy" in result.stderr
    with open(job.path("output", "data", "seen.json")) as f:
        seen = json.load(f)
    assert seen["channel_input_dirs"] == {}  # the seed docs: "will be empty" in Pipe mode
    assert seen["sm_channel_train"] == job.path("input", "data", "train")  # the reference's value, kept
    assert seen["sm_channels"] == '["train"]'
    assert seen["hyperparameters"] == {"epochs": 2, "sagemaker_program": "legacy_pipe.py"}  # all of them
    _assert_fifo_untouched(fifo, writer)


def test_a_script_runs_while_the_platform_waits_on_the_fifo(job):
    fifo, writer = _pipe_job(job, SCRIPT, "pipe.py")
    result = job.run(timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.succeeded
    with open(job.path("output", "data", "seen.json")) as f:
        assert json.load(f) == {"sm_channel_train": job.path("input", "data", "train"), "sm_channels": '["train"]'}
    _assert_fifo_untouched(fifo, writer)
