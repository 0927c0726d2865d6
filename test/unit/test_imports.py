import subprocess
import sys


def test_importing_the_package_has_no_heavy_imports():
    code = ("import sys, mx_training_toolkit.training, mx_training_toolkit.training_utils, "
            "sagemaker_mxnet_container.training_utils, sagemaker_mxnet_training.training_utils;"
            "print(sorted(m for m in ('mxnet', 'numpy', 'boto3', 'psutil') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, check=True).stdout.decode()
    assert out.strip() == "[]"
