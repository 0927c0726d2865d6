"""The CPU image as users of the reference MXNet images expect it: the MXNet ecosystem preinstalled
(GluonCV, GluonNLP, pandas, scikit-learn, SciPy, OpenCV, h5py, ONNX), ``sagemaker_training`` for
scripts, and dependencies that install without the internet. Needs a Docker engine."""

import json
import time

from fake_index import make_wheel

from . import docker_support as ds

# Fixtures (pytest finds them by name in this module).
cpu_image = ds.cpu_image
job_root = ds.job_root
container_job = ds.container_job
job_network = ds.job_network

EXIT_PIP = 4
# module -> the distribution that installs it (None: this toolkit's own module)
LIBRARIES = {"gluoncv": "gluoncv", "gluonnlp": "gluonnlp", "pandas": "pandas", "sklearn": "scikit-learn",
             "scipy": "scipy", "cv2": "opencv-python", "h5py": "h5py", "onnx": "onnx", "sagemaker_training": None}


def test_the_image_has_the_ecosystem_one_cv2_and_consistent_dependencies(cpu_image):
    # Each imports; the versions are the installed distributions' (GluonCV 0.10.5.post0 says 0.11.0 of itself).
    check = ("import importlib, importlib.metadata as md, json; print(json.dumps({m: importlib.import_module(m) and "
             "(md.version(d) if d else 'ok') for m, d in %r.items()}))" % (LIBRARIES,))
    proc = ds.docker("run", "--rm", "--network", "none", cpu_image, "python", "-c", check, check=False)
    assert proc.returncode == 0, proc.stderr
    versions = json.loads(proc.stdout.strip().splitlines()[-1])
    print("versions in the image:", versions)
    assert versions["gluoncv"] == "0.10.5.post0" and versions["gluonnlp"] == "0.10.0"
    assert int(versions["onnx"].split(".")[1]) < 19  # MXNet's exporter needs onnx.mapping
    freeze = ds.docker("run", "--rm", "--network", "none", cpu_image, "sh", "-c",
                       "python -m pip check && python -m pip list --format=freeze", check=False)
    assert freeze.returncode == 0, freeze.stdout + freeze.stderr
    opencv = [line for line in freeze.stdout.splitlines() if line.lower().startswith("opencv")]
    assert opencv == ["opencv-python==4.10.0.84"]
    size = int(ds.docker("image", "inspect", "-f", "{{.Size}}", cpu_image).stdout.strip())
    print("image size: %d bytes (%.0f MiB)" % (size, size / 2 ** 20))
    assert size < 1.5e9


def test_a_job_uses_gluoncv_gluonnlp_onnx_and_the_rest_without_network(cpu_image, container_job):
    container_job.add_code("train.py", resource="ecosystem.py")
    container_job.entry("train.py")
    [result] = ds.run_job(cpu_image, [container_job], timeout=240)
    assert result.returncode == 0, result.explain()
    report = json.loads(result.read("output", "data", "ecosystem.json"))
    print(json.dumps(report, sort_keys=True))
    assert report["gluoncv_output_shape"] == [1, 10]
    assert report["scipy_softmax_sum"] == 1.0
    assert report["gluonnlp_vocab"] == {"len": 10, "the": 4, "unknown": 0}
    assert report["gluonnlp_tokens"] == ["hello", ",", "world", "!"]
    assert report["sklearn_slope"] == 2.0
    assert report["h5py_shape"] == [1, 10]
    assert {"Conv", "Relu", "Gemm"} <= set(report["onnx_nodes"]) or {"Conv", "Relu"} <= set(report["onnx_nodes"])


def test_sagemaker_training_environment_on_a_two_host_job_with_instance_groups(cpu_image, job_root, job_network):
    """Two containers in two instance groups; algo-2 runs under a CPU quota of one CPU: the script
    gets this toolkit's count (SM_NUM_CPUS), not os.cpu_count()."""
    from mx_training_toolkit.jobfiles import group_resource_config

    jobs = ds.make_job_dirs(job_root, ["algo-1", "algo-2"])
    for job in jobs:
        job.resource_config = group_resource_config(job.current_host, {"train": ["algo-1"], "eval": ["algo-2"]})
        job.add_code("train.py", resource="reads_sagemaker_training.py")
        job.entry("train.py", epochs=3)
        job.channel("training", {"a.txt": "x"})
    names, started = [], time.monotonic()
    try:
        names.append(ds.start_container(cpu_image, jobs[0], job_network))
        names.append(ds.start_container(cpu_image, jobs[1], job_network, extra_args=["--cpus", "1"]))
        ds.wait_all(names, 120, stop_others_on_failure=False)
        results = [ds.result_of(name, job, started) for name, job in zip(names, jobs)]
    finally:
        ds.remove(names)
    for result in results:
        assert result.returncode == 0, result.explain()
    read = {r.host: json.loads(r.read("output", "data", "environment-%s.json" % r.host)) for r in results}
    for host, group in (("algo-1", "train"), ("algo-2", "eval")):
        env = read[host]
        assert env["hosts"] == env["item_hosts"] == ["algo-1", "algo-2"]
        assert env["current_host"] == host == env["sm"]["SM_CURRENT_HOST"]
        assert env["current_instance_group"] == group == env["sm"]["SM_CURRENT_INSTANCE_GROUP"]
        assert env["current_instance_group_hosts"] == [host]
        assert env["instance_groups"] == ["train", "eval"]
        assert env["instance_groups_dict"]["eval"]["hosts"] == ["algo-2"]
        assert env["is_hetero"] is True
        assert env["channel_input_dirs"] == {"training": "/opt/ml/input/data/training"}
        assert env["hyperparameters"] == {"epochs": 3}
        assert env["model_dir"] == "/opt/ml/model" == env["sm"]["SM_MODEL_DIR"]
        assert env["output_data_dir"] == "/opt/ml/output/data"
        assert env["num_gpus"] == 0 == int(env["sm"]["SM_NUM_GPUS"])
        assert env["num_cpus"] == env["module_num_cpus"] == int(env["sm"]["SM_NUM_CPUS"])
    assert read["algo-2"]["num_cpus"] == 1
    print("algo-2 under --cpus 1: Environment().num_cpus 1, os.cpu_count() %d" % read["algo-2"]["os_cpu_count"])


def _wheelhouse_job(job):
    wheelhouse = job.path("code", "wheelhouse")
    wheelhouse.mkdir(parents=True)
    make_wheel(wheelhouse, "mxtt-dep-probe", "1.0", "VALUE = 'from the shipped wheel'\n")
    job.add_code("requirements.txt", "mxtt-dep-probe==1.0\n")
    job.add_code("train.py", "import mxtt_dep_probe\nprint('probe says', mxtt_dep_probe.VALUE)\n")
    job.entry("train.py")


def test_wheels_shipped_in_code_wheelhouse_install_with_no_network(cpu_image, container_job):
    """requirements.txt from the wheelhouse, and a setup.py built without isolation with the
    image's setuptools (no index to fetch one from)."""
    _wheelhouse_job(container_job)
    container_job.add_code("setup.py", "from setuptools import setup\nsetup(name='mxtt-dep-user', version='0.1', "
                                       "py_modules=['train'], install_requires=['mxtt-dep-probe'])\n")
    [result] = ds.run_job(cpu_image, [container_job], env={"PIP_INDEX_URL": "http://mxtt-index.invalid/simple/"})
    assert result.returncode == 0, result.explain()
    assert "probe says from the shipped wheel" in result.logs
    assert "Successfully installed mxtt-dep-user-0.1" in result.logs, result.explain()


def test_requirements_the_image_meets_install_with_no_network(cpu_image, container_job):
    container_job.add_code("requirements.txt", "gluoncv\ngluonnlp==0.10.0\npandas\nopencv-python\nonnx<1.19\n")
    container_job.add_code("train.py", "import gluoncv, gluonnlp\nprint('imported gluoncv and gluonnlp')\n")
    container_job.entry("train.py")
    [result] = ds.run_job(cpu_image, [container_job], env={"PIP_INDEX_URL": "http://mxtt-index.invalid/simple/"})
    assert result.returncode == 0, result.explain()
    assert "imported gluoncv and gluonnlp" in result.logs


def test_an_index_the_container_cannot_reach_fails_the_job_at_once(cpu_image, container_job):
    container_job.add_code("requirements.txt", "mxtt-not-in-the-image==1.0\n")
    container_job.add_code("train.py", "print('should not run')\n")
    container_job.entry("train.py")
    [result] = ds.run_job(cpu_image, [container_job],
                          env={"PIP_INDEX_URL": "https://user:hunter2-pw@mxtt-index.invalid/simple/"})
    assert result.returncode == EXIT_PIP, result.explain()
    assert result.failure_first_line == (
        "pip install failed: the package index https://user:****@mxtt-index.invalid/simple/ (PIP_INDEX_URL) could "
        "not be reached (the name mxtt-index.invalid does not resolve); requirements.txt needs packages the image "
        "does not have. To install without an index, ship their wheels in code/wheelhouse/ (pip download -r "
        "requirements.txt -d wheelhouse for this image's Python and platform)"), result.explain()
    assert result.seconds < 30, result.explain()
    assert "hunter2-pw" not in result.logs + result.failure


# --- docker/build.py: the GluonNLP wheel (no engine needed) ----------------------------------------

BUILD = ds.build


def test_pip_download_skips_the_wheels_built_on_the_host():
    requirements = BUILD.FLAVORS["cpu"].requirements.read_text()
    assert BUILD.gluonnlp_pin(requirements) == "0.10.0"
    kept = BUILD.without_host_built(requirements)
    assert BUILD.gluonnlp_pin(kept) is None and BUILD.horovod_pin(kept) is None
    assert "gluoncv==0.10.5.post0" in kept and "\ncython\n" in kept


def test_the_gpu_image_pins_the_ecosystem_as_the_cpu_image_does():
    # Both --local bases are bookworm with Python 3.11: a pin changed in one file must change in the other.
    def pins(flavor):
        lines = BUILD.FLAVORS[flavor].requirements.read_text().splitlines()
        return {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    ecosystem = {"gluoncv==0.10.5.post0", "gluonnlp==0.10.0", "cython", "opencv-python==4.10.0.84", "pandas==2.2.3",
                 "scikit-learn==1.5.2", "scipy==1.13.1", "h5py==3.12.1", "onnx==1.17.0", "protobuf>=4.25.1,<6",
                 "setuptools>=70.1,<81"}
    assert ecosystem <= pins("cpu")
    assert pins("cpu") - {"mxnet==1.9.1"} <= pins("gpu"), sorted(pins("cpu") - pins("gpu"))
    assert BUILD.gluonnlp_pin(BUILD.FLAVORS["gpu"].requirements.read_text()) == "0.10.0"


def test_a_missing_gluonnlp_wheel_without_a_python_to_build_it_fails_saying_how(tmp_path):
    import pytest

    target = BUILD.Target("3.9", "2_36")
    with pytest.raises(RuntimeError) as info:
        BUILD.ensure_gluonnlp_wheel("0.10.0", target, cache_root=tmp_path)
    assert str(info.value).startswith("no GluonNLP wheel %s/gluonnlp/gluonnlp-0.10.0-cp39-cp39-linux_x86_64.whl"
                                      % tmp_path)
    assert str(info.value).endswith("build it with `MX_TRAINING_CACHE=%s bash scripts/build_gluonnlp.sh PYTHON`, "
                                    "PYTHON being a Python 3.9, then run build.py again" % tmp_path)


def test_the_cached_gluonnlp_wheel_goes_into_the_wheelhouse_once(tmp_path):
    wheel = BUILD.ensure_gluonnlp_wheel("0.10.0", BUILD.BOOKWORM, build_missing=False)
    (tmp_path / "gluonnlp-0.9.0-cp311-cp311-linux_x86_64.whl").write_bytes(b"old")
    copied = BUILD.add_host_wheel(wheel, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [wheel.name]
    assert copied.read_bytes() == wheel.read_bytes()
