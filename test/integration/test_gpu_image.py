"""The complete GPU image (mxnet-cu112, the CUDA 11 libraries, Horovod with NCCL) run as containers on a
machine without a GPU: what can be checked without a device. The image has no libcuda.so.1 (the NVIDIA
container toolkit mounts the driver's); these tests mount the stub its builder stage made in the same
place. Needs a Docker engine (.ci/docker-up.sh); fails without one when CI=true. A GPU machine is
checked by scripts/gpu_check.py instead (docker/README.md)."""

import json
import re

from . import docker_support as ds

# Fixtures (pytest finds them by name in this module).
gpu_image = ds.gpu_image
gpu_job_root = ds.gpu_job_root
gpu_job_network = ds.gpu_job_network

SITE = "/opt/venv/lib/python3.11/site-packages"


def _in_container(gpu_image, script, stub=True):
    args = gpu_image.stub_args if stub else []
    return ds.docker("run", "--rm", "--network", "none", "--label", "%s=%s" % (ds.LABEL, ds.RUN_ID), *args,
                     gpu_image.name, "sh", "-c", script, check=False)


def test_gpu_image_has_mxnet_horovod_with_nccl_and_every_library(gpu_image):
    check = ("set -e; python -c 'import mxnet as mx, horovod, horovod.mxnet as hvd;"
             " print(mx.__version__, horovod.__version__, hvd.nccl_built(), hvd.gloo_built(), hvd.mpi_built(),"
             " mx.context.num_gpus())';"
             " python -m pip check;"
             " python -m pip show nvidia-nccl-cu11 nvidia-cuda-runtime-cu11 nvidia-cudnn-cu11 | grep ^Version;"
             " for lib in $(find %s/mxnet %s/horovod -name '*.so*' -type f); do echo \"== $lib\"; ldd $lib; done"
             % (SITE, SITE))
    proc = _in_container(gpu_image, check)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    # MXNet 1.9.1 and Horovod 0.28.1 with NCCL (a version number), Gloo, no MPI; the stub driver has no GPU.
    assert re.fullmatch(r"1\.9\.1 0\.28\.1 \d+ True False 0", lines[0]), proc.stdout
    assert lines[1] == "No broken requirements found.", proc.stdout
    assert lines[2:5] == ["Version: 2.21.5", "Version: 11.8.89", "Version: 8.9.6.50"], proc.stdout
    libraries, current = {}, None
    for line in lines[5:]:
        if line.startswith("== "):
            current = libraries.setdefault(line[3:], {})
        elif " => " in line:
            name, path = line.strip().split(" => ")
            current[name] = path
    missing = {lib: [n for n, p in needs.items() if "not found" in p] for lib, needs in libraries.items()}
    assert not any(missing.values()), missing
    mxnet = libraries["%s/mxnet/libmxnet.so" % SITE]
    for name, wheel in (("libcudart.so.11.0", "cuda_runtime"), ("libcublas.so.11", "cublas"),
                        ("libcufft.so.10", "cufft"), ("libcurand.so.10", "curand"), ("libcusolver.so.11", "cusolver"),
                        ("libnvrtc.so.11.2", "cuda_nvrtc"), ("libcudnn.so.8", "cudnn"), ("libnccl.so.2", "nccl"),
                        ("libnvToolsExt.so.1", "nvtx")):
        assert mxnet[name].startswith("%s/nvidia/%s/lib/%s " % (SITE, wheel, name)), (name, mxnet[name])
    # The mounted stub (/lib is /usr/lib on Debian bookworm).
    assert re.match(r"(/usr)?/lib/x86_64-linux-gnu/libcuda\.so\.1 ", mxnet["libcuda.so.1"]), mxnet
    [horovod_lib] = [lib for lib in libraries if re.search(r"/horovod/mxnet/mpi_lib\.cpython-311-x86_64-linux-gnu\.so$",
                                                          lib)]
    assert libraries[horovod_lib]["libnccl.so.2"].startswith("%s/nvidia/nccl/lib/libnccl.so.2 " % SITE), \
        libraries[horovod_lib]


def test_gpu_image_has_no_libcuda_of_its_own(gpu_image):
    check = ("find / -xdev -name 'libcuda.so*' -print; ldconfig -p | grep -c 'libcuda\\.so';"
             " python -c 'import mxnet' 2>&1 | tail -1")
    proc = _in_container(gpu_image, check, stub=False)
    assert proc.stdout.splitlines() == [
        "0", "OSError: libcuda.so.1: cannot open shared object file: No such file or directory"], proc.stdout


def test_train_reports_no_gpus_and_a_cpu_job_trains(gpu_image, gpu_job_root):
    job = ds.JobDir(gpu_job_root / "algo-1")
    job.add_code("train.py", resource="gpu_image_cpu_train.py")
    job.entry("train.py")
    [result] = ds.run_job(gpu_image.name, [job], extra_args=gpu_image.stub_args, timeout=120)
    assert result.returncode == 0, result.explain()
    assert result.succeeded, result.explain()
    assert "; 0 GPUs, " in result.logs, result.explain()  # the environment's summary line
    report = json.loads(result.read("output", "data", "train.json"))
    assert (report["mxnet"], report["num_gpus"], report["SM_NUM_GPUS"]) == ("1.9.1", 0, "0"), report
    assert report["last_loss"] < report["first_loss"] / 10, report
    assert sorted(p.name for p in job.path("model").iterdir()) == [
        "model-0000.params", "model-shapes.json", "model-symbol.json"], result.explain()


def test_horovod_over_gloo_on_two_gpu_image_containers(gpu_image, gpu_job_root):
    jobs = ds.horovod_jobs(gpu_job_root, "allreduce.py")
    results = ds.run_job(gpu_image.name, jobs, timeout=120, extra_args=gpu_image.stub_args)
    ds.check_two_rank_allreduce(results)


def test_device_files_give_sm_num_gpus_and_one_rank_per_gpu(gpu_image, gpu_job_root, gpu_job_network):
    jobs = ds.per_gpu_jobs(gpu_job_root)
    results = ds.run_with_gpus(gpu_image.name, jobs, (2, 2), gpu_job_network, gpu_job_root,
                               extra_args=gpu_image.stub_args)
    for result in results:
        assert result.returncode == 0, result.explain()
        assert "; 2 GPUs, " in result.logs, result.explain()
    reports = [json.loads(results[rank // 2].read("output", "data", "rank-%d.json" % rank)) for rank in range(4)]
    assert [(r["rank"], r["size"], r["local_rank"], r["local_size"], r["host"]) for r in reports] == [
        (0, 4, 0, 2, "algo-1"), (1, 4, 1, 2, "algo-1"), (2, 4, 0, 2, "algo-2"), (3, 4, 1, 2, "algo-2")]
    assert all(r["sum"] == [10.0, 10.0, 10.0] for r in reports), reports


def test_gpu_image_has_the_cpu_images_ecosystem_and_a_job_uses_it(gpu_image, gpu_job_root):
    # The same ecosystem and pins as the CPU image (test_container_ecosystem.py), one cv2.
    freeze = _in_container(gpu_image, "python -m pip list --format=freeze")
    assert freeze.returncode == 0, freeze.stderr
    pins = {"gluoncv==0.10.5.post0", "gluonnlp==0.10.0", "opencv-python==4.10.0.84", "pandas==2.2.3",
            "scikit-learn==1.5.2", "scipy==1.13.1", "h5py==3.12.1", "onnx==1.17.0"}
    installed = set(freeze.stdout.split())
    assert pins <= installed, sorted(pins - installed)
    assert [p for p in installed if p.lower().startswith("opencv")] == ["opencv-python==4.10.0.84"], freeze.stdout
    size = int(ds.docker("image", "inspect", "-f", "{{.Size}}", gpu_image.name).stdout.strip())
    print("image size: %d bytes (%.0f MiB)" % (size, size / 2 ** 20))
    # On the CPU (the stub driver has no GPU): every library, a GluonCV model-zoo forward pass, ONNX export.
    job = ds.JobDir(gpu_job_root / "algo-1")
    job.add_code("train.py", resource="ecosystem.py")
    job.entry("train.py")
    [result] = ds.run_job(gpu_image.name, [job], extra_args=gpu_image.stub_args, timeout=240)
    assert result.returncode == 0, result.explain()
    assert "; 0 GPUs, " in result.logs, result.explain()
    report = json.loads(result.read("output", "data", "ecosystem.json"))
    assert {"gluoncv", "gluonnlp", "cv2", "pandas", "sklearn", "scipy", "h5py", "onnx"} <= set(report["versions"])
    assert report["versions"]["mxnet"] == "1.9.1", report
    assert report["gluoncv_output_shape"] == [1, 10], report
    assert report["scipy_softmax_sum"] == 1.0, report
    assert report["gluonnlp_tokens"] == ["hello", ",", "world", "!"], report
    assert report["sklearn_slope"] == 2.0 and report["h5py_shape"] == [1, 10], report
    assert {"Conv", "Relu"} <= set(report["onnx_nodes"]), report
