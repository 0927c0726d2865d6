"""``mx-train``: the bundled example, and Ctrl-C on a multi-host job."""

import os
import re
import signal
import subprocess
import time

from .support import MX_TRAIN, PS_CODE, assert_no_process_left, read


def test_bundled_example_runs_end_to_end(tmp_path):
    root = str(tmp_path / "example")
    proc = subprocess.run(MX_TRAIN + ["--base-dir", root], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, timeout=180)
    text = proc.stdout.decode()
    assert proc.returncode == 0, text[-3000:]
    mse = float(re.search(r"example: final mse ([0-9.]+)", text).group(1))
    assert mse < 0.5
    assert "mx-train: the job succeeded; model in {}".format(os.path.join(root, "algo-1", "model")) in text
    assert sorted(os.listdir(os.path.join(root, "algo-1", "model"))) == [
        "model-0000.params", "model-shapes.json", "model-symbol.json"]


def test_ctrl_c_stops_every_host(tmp_path):
    root = str(tmp_path / "hosts")
    argv = MX_TRAIN + ["--code", PS_CODE, "--entry-point", "dist_sum.py", "--hosts", "2", "--parameter-server",
                       "--hp", "steps=400", "--hp", "sleep=0.05", "--base-dir", root]
    # The launchers inherit the grace (a worker blocked in a kvstore call may wait for all of it).
    env = dict(os.environ, MX_TRAINING_STOP_GRACE_SECONDS="3")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        seen = 0
        while seen < 2:
            line = proc.stdout.readline()
            assert line, "mx-train ended before training started"
            seen += b"dist_sum: pulled sum" in line
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert time.monotonic() - began < 20
    # Each launcher gets the SIGINT, or the other's failure reaches it first. How its worker ends is
    # MXNet's to decide: it dies of the SIGINT, or its runner records the KeyboardInterrupt (130), or
    # MXNet turns it into an error (1); blocked in a kvstore call, where Python never sees the
    # SIGINT, it dies of the stop's SIGTERM or is killed at the 3 s grace. All seen under load.
    stopped = re.escape("Job stopped: the launcher received SIGINT before the job finished; dist_sum.py ")
    endings = (r"was killed by SIGINT \(exit status 130\)", r"was killed by SIGTERM \(exit status 143\)",
               r"exited with status (130|1)(: .+)?", r"did not stop within 3 s and was killed")
    for host, other in (("algo-1", "algo-2"), ("algo-2", "algo-1")):
        line = read(root, host, "output", "failure").splitlines()[0]
        relayed = "Job failed on {}: Job stopped: the launcher received SIGINT".format(other)
        assert line == relayed or re.fullmatch(stopped + "(" + "|".join(endings) + ")", line), line
    assert_no_process_left(root, "DMLC_ROLE")
    assert_no_process_left(root)  # launchers and everything they started


def test_a_missing_code_directory_is_refused_before_any_host_starts(tmp_path):
    root = tmp_path / "hosts"
    proc = subprocess.run(MX_TRAIN + ["--code", str(tmp_path / "missing"), "--hosts", "2", "--base-dir", str(root)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.decode().strip().splitlines()[-1] == "mx-train: error: --code {}: no such directory or file".format(
        tmp_path / "missing")
    assert not root.exists()  # no host was set up, let alone started


def test_a_relative_base_dir_runs_the_job_there(tmp_path):
    """It once failed every host with 'sagemaker_program missing' and wrote into a nested stray directory."""
    proc = subprocess.run(MX_TRAIN + ["--base-dir", "rel", "--hosts", "2"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=180, cwd=str(tmp_path))
    text = proc.stdout.decode()
    assert proc.returncode == 0, text[-3000:]
    assert "mx-train: the job succeeded; model in {}".format(tmp_path / "rel" / "algo-1" / "model") in text
    assert sorted(os.listdir(str(tmp_path))) == ["rel"]
    assert sorted(os.listdir(str(tmp_path / "rel"))) == ["algo-1", "algo-2", "example-data"]
