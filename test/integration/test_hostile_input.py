"""Code and config input built to trip the launcher: odd entry point names, links out of code/."""

import os
import stat

from .support import free_port


def test_an_entry_point_named_like_an_option_runs_as_a_file(job):
    job.add_script("-c.py", "print('ran -c.py')\n")
    job.entry("-c.py")
    result = job.run()
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ran -c.py\n" in result.stdout


def test_an_entry_point_named_like_an_option_runs_under_the_parameter_server_runner(job):
    job.add_script("-c.py", "print('ran -c.py')\n")
    job.entry("-c.py")
    job.hyperparameters["sagemaker_parameter_server_enabled"] = "true"
    job.hyperparameters["_ps_port"] = str(free_port())
    result = job.run(MX_TRAINING_PS_LINGER_SECONDS="0")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ran -c.py\n" in result.stdout


def test_an_entry_point_linked_out_of_code_is_never_chmod_ed(job, tmp_path):
    outside = tmp_path / "outside.sh"
    outside.write_text("#!/bin/sh\necho should not run\n")
    os.chmod(str(outside), 0o600)
    os.symlink(str(outside), job.path("code", "run.sh"))
    job.entry("run.sh")
    result = job.run()
    assert stat.S_IMODE(os.stat(str(outside)).st_mode) == 0o600
    assert (result.returncode, result.failure_first_line) == (
        126, "User script failed: cannot start ./run.sh in {}: Permission denied".format(job.code_dir))
    assert "should not run" not in result.stdout
