import subprocess
import sys


def _imported_after(statement, candidates):
    code = "import sys; {}; print(sorted(m for m in {!r} if m in sys.modules))".format(statement, candidates)
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, check=True).stdout.decode()
    return out.strip()


def test_importing_the_package_has_no_heavy_imports():
    statement = ("import mx_training_toolkit.training, mx_training_toolkit.training_utils, "
                 "sagemaker_mxnet_container.training_utils, sagemaker_mxnet_training.training_utils")
    assert _imported_after(statement, ("mxnet", "numpy", "boto3", "psutil")) == "[]"


def test_the_launcher_does_not_import_what_a_one_host_job_does_not_need():
    # Each of these costs milliseconds of the launcher's start-up budget (benchmarks/launch_overhead.py).
    unneeded = ("logging", "dataclasses", "socket", "tarfile", "tempfile", "shutil", "runpy")
    assert _imported_after("import mx_training_toolkit.training", unneeded) == "[]"
