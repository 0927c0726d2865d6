"""The CPU image run as a container, the way the platform runs it: `docker run IMAGE train` with the
job's /opt/ml mounted. Needs a Docker engine (.ci/docker-up.sh); fails without one when CI=true.
At the end, docker/build.py's handling of the Horovod wheel, which needs no engine."""

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import zipfile

import pytest

from . import docker_support as ds

# Fixtures (pytest finds them by name in this module).
cpu_image = ds.cpu_image
job_root = ds.job_root
container_job = ds.container_job
job_network = ds.job_network


def test_image_has_mxnet_the_launcher_and_the_legacy_import_paths(cpu_image):
    check = ("import mxnet as mx, numpy, mx_training_toolkit;"
             "import sagemaker_mxnet_container.training_utils, sagemaker_mxnet_training.training_utils;"
             "print(mx.__version__, numpy.__version__, mx.nd.ones((2, 3)).sum().asscalar())")
    proc = ds.docker("run", "--rm", "--network", "none", "--label", "%s=%s" % (ds.LABEL, ds.RUN_ID),
                     cpu_image, "python", "-c", check, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1.9.1", "1.23.5", "6.0"]
    which = ds.docker("run", "--rm", "--network", "none", cpu_image, "sh", "-c", "command -v train")
    assert which.stdout.strip() == "/opt/venv/bin/train"


def test_script_mode_job_succeeds(cpu_image, container_job):
    container_job.add_code("train.py", resource="succeed.py")
    container_job.entry("train.py", epochs=2)
    [result] = ds.run_job(cpu_image, [container_job])
    assert result.returncode == 0, result.explain()
    assert result.succeeded, result.explain()
    assert result.failure is None
    assert "succeed: epochs=2 host=algo-1 hosts=[\"algo-1\"]" in result.logs
    assert result.read("model", "model.txt") == "trained for 2 epochs\n"


def test_failing_job_exit_status_and_failure_file(cpu_image, container_job):
    container_job.add_code("train.py", resource="fail.py")
    container_job.entry("train.py")
    [result] = ds.run_job(cpu_image, [container_job])
    assert (result.returncode, result.failure_first_line) == (
        3, "User script failed: train.py exited with status 3"), result.explain()
    assert not result.succeeded
    assert "Traceback (most recent call last)" in result.failure
    assert "FileNotFoundError: training data not found in the container" in result.failure


def test_requirements_installed_from_a_local_package_without_network(cpu_image, container_job):
    container_job.add_code("localpkg", resource="localpkg")
    container_job.add_code("requirements.txt", "./localpkg\n")
    container_job.add_code("train.py", resource="uses_localpkg.py")
    container_job.entry("train.py")
    [result] = ds.run_job(cpu_image, [container_job])
    assert result.returncode == 0, result.explain()
    assert result.read("output", "data", "localpkg.txt").startswith("42 /opt/venv/"), result.explain()


def test_docker_stop_reaches_the_scripts_sigterm_handler(cpu_image, container_job, job_network):
    stop_timeout = 20
    container_job.add_code("train.py", resource="trap_sigterm.py")
    container_job.entry("train.py")
    name = ds.start_container(cpu_image, container_job, job_network)
    started = time.monotonic()
    try:
        ready = ds.wait_for_file(container_job.path("output", "data", "ready"), name, timeout=120)
        assert ready, ds.result_of(name, container_job, started).explain()
        began = time.monotonic()
        ds.docker("stop", "-t", stop_timeout, name, timeout=stop_timeout + 60)
        stop_seconds = time.monotonic() - began
        result = ds.result_of(name, container_job, started)
    finally:
        ds.remove([name])
    print("docker stop took %.2f s" % stop_seconds)
    # 137 would mean docker gave up waiting and sent SIGKILL.
    assert (result.returncode, result.failure_first_line) == (
        7, "Job stopped: the launcher received SIGTERM before the job finished; train.py exited with status 7"), \
        result.explain()
    assert stop_seconds < stop_timeout
    assert container_job.path("output", "data", "got-sigterm").exists(), result.explain()


def test_two_containers_on_one_network_resolve_each_other(cpu_image, job_root):
    hosts = ds.host_names(2)
    jobs = ds.make_job_dirs(job_root, hosts)
    for job in jobs:
        job.add_code("train.py", resource="resolve_hosts.py")
        job.entry("train.py")
    results = ds.run_job(cpu_image, jobs)
    seen = []
    for result in results:
        assert result.returncode == 0, result.explain()
        seen.append(json.loads(result.read("output", "data", "hosts.json")))
    assert [s["current_host"] for s in seen] == hosts
    # Both containers agree on every address, and the addresses differ.
    assert seen[0]["addresses"] == seen[1]["addresses"]
    assert len(set(seen[0]["addresses"].values())) == 2


def test_legacy_mode_job_saves_the_module_with_the_default_save(cpu_image, container_job):
    container_job.add_code("train.py", shared="legacy/module_train.py")
    container_job.entry("train.py", epochs=1)
    [result] = ds.run_job(cpu_image, [container_job], timeout=60)
    assert result.returncode == 0, result.explain()
    assert result.succeeded, result.explain()
    assert "mode: legacy" in result.logs, result.explain()
    assert sorted(p.name for p in container_job.path("model").iterdir()) == [
        "model-0000.params", "model-shapes.json", "model-symbol.json"], result.explain()
    shapes = json.loads(result.read("model", "model-shapes.json"))
    assert shapes == [{"name": "data", "shape": [16, 5]}], shapes


def _dist_sum_jobs(job_root, **hyperparameters):
    jobs = ds.make_job_dirs(job_root, ds.host_names(2))
    for job in jobs:
        job.add_code("dist_sum.py", shared="ps/dist_sum.py")
        job.entry("dist_sum.py", sagemaker_parameter_server_enabled=True, **hyperparameters)
    return jobs


def _model_files(job):
    return sorted(p.name for p in job.path("model").iterdir())


def test_parameter_server_job_on_two_containers(cpu_image, job_root):
    jobs = _dist_sum_jobs(job_root, steps=10)
    results = ds.run_job(cpu_image, jobs, timeout=90)
    for result in results:
        assert result.returncode == 0, result.explain()
        assert result.succeeded, result.explain()
        assert "dist_sum: pulled sum 3 as expected" in result.logs, result.explain()
    sums = [json.loads(result.read("output", "data", "sum.json")) for result in results]
    for summed in sums:
        assert summed["expected"] == 3
        assert summed["sum"] == [[3.0] * 3] * 2
    assert sorted(s["rank"] for s in sums) == [0, 1]
    assert _model_files(jobs[0]) == ["model-0001.params", "model-symbol.json"], results[0].explain()
    assert _model_files(jobs[1]) == [], results[1].explain()


def _kill_the_second_container(cpu_image, jobs, job_network, ready_marker, ready_timeout):
    """Start the jobs' containers, ``docker kill`` the second once every one logged ``ready_marker``
    -> (the first's exit status, seconds from the kill to its exit, its ``Result``)."""
    names = []
    started = time.monotonic()
    try:
        for job in jobs:
            names.append(ds.start_container(cpu_image, job, job_network))
        ready = ds.wait_for_log(names, ready_marker, timeout=ready_timeout)
        assert ready, "\n".join(ds.result_of(n, j, started).explain() for n, j in zip(names, jobs))
        killed_at = time.monotonic()
        ds.docker("kill", names[1])
        code = ds.wait_for_exit(names[0], timeout=45)
        seconds = time.monotonic() - killed_at
        result = ds.result_of(names[0], jobs[0], started)
    finally:
        ds.remove(names)
    print("algo-1 exited %s, %.2f s after docker kill algo-2; failure: %s" % (code, seconds, result.failure_first_line))
    return code, seconds, result


def test_killing_one_container_ends_the_job_on_the_other(cpu_image, job_root, job_network):
    jobs = _dist_sum_jobs(job_root, steps=400, sleep=0.05)
    code, seconds, result = _kill_the_second_container(cpu_image, jobs, job_network, "dist_sum: pulled sum", 60)
    assert seconds < 30, result.explain()
    # The launchers' channel notices first: ps-lite never notices a peer that is gone (its workers
    # would block in their next pull). The lost host is the root cause, status 1.
    assert (code, result.failure_first_line) == (
        1, "Job failed on algo-2: the connection to the launcher on algo-2 was lost (the host stopped or died)"), \
        result.explain()
    assert _model_files(jobs[0]) == [], result.explain()


def test_the_7888_hang_on_two_containers_ends_with_every_processs_stacks(cpu_image, job_root):
    """The stall watchdog in the image: the workers push and pull different numbers of times (apache/mxnet
    #7888); both containers exit 124 within seconds of the setting, each with its processes' stacks."""
    jobs = ds.make_job_dirs(job_root, ds.host_names(2))
    for job in jobs:
        job.add_code("uneven_pulls.py", shared="hung/uneven_pulls.py")
        job.entry("uneven_pulls.py", sagemaker_parameter_server_enabled=True)
    results = ds.run_job(cpu_image, jobs, env={"MX_TRAINING_STALL_TIMEOUT_SECONDS": "8"}, timeout=120)
    for result, host in zip(results, ("algo-1", "algo-2")):
        assert (result.returncode, result.failure_first_line) == (
            124, "Job stalled: no output from any worker for 8 s"), result.explain()
        assert "--- worker on {}, pid ".format(host) in result.failure, result.explain()
        assert "/opt/venv/lib/python3.11/site-packages/mxnet/" in result.failure  # the image's MXNet, waiting
    blocked = ['/opt/ml/code/uneven_pulls.py", line 18 in <module>' in result.failure for result in results]
    assert sorted(blocked) == [False, True], [result.failure for result in results]


def test_legacy_script_on_two_containers_gets_the_parameter_server(cpu_image, job_root):
    jobs = ds.make_job_dirs(job_root, ds.host_names(2))
    for job in jobs:
        job.add_code("legacy_dist.py", shared="ps/legacy_dist.py")
        job.entry("legacy_dist.py")
    results = ds.run_job(cpu_image, jobs, timeout=90)
    for result in results:
        assert result.returncode == 0, result.explain()
        assert "mode: legacy" in result.logs, result.explain()
        assert "pulled [3.0, 3.0, 3.0]" in result.logs, result.explain()
    assert _model_files(jobs[0]) == ["model-0000.params", "model-shapes.json", "model-symbol.json"], \
        results[0].explain()
    assert _model_files(jobs[1]) == [], results[1].explain()


# --- Horovod (the SDK's mpi option) in the image ------------------------------------------------

def test_image_has_horovod_with_gloo_stripped_and_with_every_library(cpu_image):
    # One container for all the checks: imports, how Horovod was built, pip check, the installed
    # size (the stripped wheel: about 5 MB with its .pyc files, 49 MB unstripped) and ldd.
    check = ("set -e; python -c 'import horovod, horovod.mxnet as hvd;"
             " print(horovod.__version__, hvd.gloo_built(), hvd.mpi_built(), hvd.nccl_built())';"
             " python -m pip check;"
             " du -sk /opt/venv/lib/python3.11/site-packages/horovod | cut -f1;"
             " ldd /opt/venv/lib/python3.11/site-packages/horovod/mxnet/mpi_lib.cpython-311-x86_64-linux-gnu.so")
    proc = ds.docker("run", "--rm", "--network", "none", "--label", "%s=%s" % (ds.LABEL, ds.RUN_ID),
                     cpu_image, "sh", "-c", check, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "0.28.1 True False 0", proc.stdout
    assert lines[1] == "No broken requirements found.", proc.stdout
    size_kb = int(lines[2])
    print("site-packages/horovod in the image: %d KiB" % size_kb)
    assert size_kb < 10 * 1024, proc.stdout
    libraries = dict(line.split(" => ") for line in (l.strip() for l in lines[3:]) if " => " in line)
    assert not [name for name, path in libraries.items() if "not found" in path], proc.stdout
    # libmxnet.so through the relocated RUNPATH ($ORIGIN/../../mxnet), never a host path.
    assert libraries["libmxnet.so"].startswith(
        "/opt/venv/lib/python3.11/site-packages/horovod/mxnet/../../mxnet/libmxnet.so "), proc.stdout
    assert libraries["libgomp.so.1"].startswith("/lib/x86_64-linux-gnu/libgomp.so.1 "), proc.stdout


def test_horovod_allreduce_on_two_containers(cpu_image, job_root):
    results = ds.run_job(cpu_image, ds.horovod_jobs(job_root, "allreduce.py"), timeout=120)
    ds.check_two_rank_allreduce(results)
    assert "[rank 1] allreduce: rank 1 of 2 got [3.0, 3.0, 3.0]" in results[1].logs, results[1].explain()


def test_horovod_gluon_training_on_two_containers(cpu_image, job_root):
    jobs = ds.horovod_jobs(job_root, "gluon_train.py")
    results = ds.run_job(cpu_image, jobs, timeout=120)
    for result in results:
        assert result.returncode == 0, result.explain()
        assert result.succeeded, result.explain()
    params = [result.read("output", "data", "params-rank%d.json" % rank) for rank, result in enumerate(results)]
    assert params[0] is not None and params[0] == params[1], params
    assert _model_files(jobs[0]) == ["model-0000.params", "model-shapes.json", "model-symbol.json"], \
        results[0].explain()
    assert _model_files(jobs[1]) == [], results[1].explain()


def test_killing_a_horovod_container_ends_the_job_on_the_other(cpu_image, job_root, job_network):
    jobs = ds.horovod_jobs(job_root, "allreduce.py", sleep=120)
    # Both ranks are past hvd.init() (the Gloo context is up) and sleep before the allreduce.
    code, seconds, result = _kill_the_second_container(cpu_image, jobs, job_network, "started, pid", 90)
    first = result.failure_first_line
    assert seconds < 30, result.explain()
    assert code == 1, result.explain()
    # The launchers' channel notices first (the sleeping rank 0 has no Horovod operation pending to
    # fail); the lost host is the root cause, status 1.
    assert first == ("Job failed on algo-2: the connection to the launcher on algo-2 was lost "
                     "(the host stopped or died)"), result.explain()
    assert _model_files(jobs[0]) == [], result.explain()


def test_horovod_starts_one_rank_per_gpu_in_each_container(cpu_image, job_root, job_network):
    jobs = ds.per_gpu_jobs(job_root)
    results = ds.run_with_gpus(cpu_image, jobs, (2, 2), job_network, job_root)
    for result in results:
        assert result.returncode == 0, result.explain()
        assert "2 GPUs" in result.logs, result.explain()  # the environment's summary line
    reports = [json.loads(results[rank // 2].read("output", "data", "rank-%d.json" % rank)) for rank in range(4)]
    assert [(r["rank"], r["size"], r["local_rank"], r["local_size"], r["host"]) for r in reports] == [
        (0, 4, 0, 2, "algo-1"), (1, 4, 1, 2, "algo-1"), (2, 4, 0, 2, "algo-2"), (3, 4, 1, 2, "algo-2")]
    assert all(r["sum"] == [10.0, 10.0, 10.0] for r in reports), reports


def test_containers_with_other_gpu_counts_fail_the_job_naming_both_counts(cpu_image, job_root, job_network):
    jobs = ds.per_gpu_jobs(job_root)
    results = ds.run_with_gpus(cpu_image, jobs, (2, 1), job_network, job_root, timeout=90)
    cause = ("Configuration error: Horovod: algo-2 starts 1 rank (one per GPU: 1 GPU), but the first host algo-1 "
             "starts 2; every host must start the same number (give every host as many GPUs, or set the "
             "hyperparameter sagemaker_mpi_num_of_processes_per_host)")
    assert [r.returncode for r in results] == [2, 2], results[0].explain() + results[1].explain()
    assert results[1].failure_first_line == cause, results[1].explain()
    assert results[0].failure_first_line == "Job failed on algo-2: " + cause, results[0].explain()
    assert results[0].read("output", "data", "rank-0.json") is None  # no rank started


# --- docker/build.py: the Horovod wheel (no engine needed) ----------------------------------------

BUILD = ds.build
HOROVOD_VERSION = "0.28.1"


def test_the_images_pin_the_horovod_version_scripts_install_horovod_sh_builds():
    script = (ds.REPO_ROOT / "scripts" / "install_horovod.sh").read_text()
    default = re.search(r'VERSION="\$\{HOROVOD_VERSION:-([^}]+)\}"', script).group(1)
    for flavor in ("cpu", "gpu"):
        requirements = BUILD.FLAVORS[flavor].requirements.read_text()
        assert BUILD.horovod_pin(requirements) == default == HOROVOD_VERSION
        kept = BUILD.without_horovod(requirements)
        assert BUILD.horovod_pin(kept) is None
        # Only the horovod line goes; its dependencies stay.
        assert len(requirements.splitlines()) - len(kept.splitlines()) == 1
        assert "\ncloudpickle\n" in kept and "\npyyaml\n" in kept


def _cached_horovod_wheel():
    try:
        return BUILD.ensure_horovod_wheel(HOROVOD_VERSION, BUILD.BOOKWORM, build_missing=False)
    except RuntimeError as exc:
        if ds.in_ci():
            raise
        pytest.skip(str(exc))


def test_the_wheel_in_the_wheelhouse_finds_libmxnet_relative_to_itself(tmp_path):
    source = _cached_horovod_wheel()
    relocated = BUILD.add_horovod_wheel(source, tmp_path)
    assert relocated == tmp_path / source.name
    library = "horovod/mxnet/mpi_lib.cpython-311-x86_64-linux-gnu.so"
    with zipfile.ZipFile(source) as before, zipfile.ZipFile(relocated) as after:
        assert [i.filename for i in before.infolist()] == [i.filename for i in after.infolist()]
        assert after.getinfo(library).external_attr == before.getinfo(library).external_attr
        assert BUILD.elf_runpath(before.read(library)).endswith("/site-packages/mxnet")
        assert BUILD.elf_runpath(after.read(library)) == "$ORIGIN/../../mxnet"
        assert len(after.read(library)) == len(before.read(library))
        changed = [name for name in before.namelist() if before.read(name) != after.read(name)]
        assert changed == [library, "horovod-%s.dist-info/RECORD" % HOROVOD_VERSION]
        # RECORD names every file's real hash and size, so pip and `wheel unpack` accept it.
        for line in after.read("horovod-%s.dist-info/RECORD" % HOROVOD_VERSION).decode().splitlines():
            name, digest, size = line.rsplit(",", 2)
            if digest:
                data = after.read(name)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert (digest, int(size)) == ("sha256=" + expected, len(data)), name
    # The next build reuses it: not rewritten while the cached wheel stays the same.
    stamp = relocated.stat().st_mtime_ns
    assert BUILD.add_horovod_wheel(source, tmp_path) == relocated
    assert relocated.stat().st_mtime_ns == stamp


def test_a_missing_horovod_wheel_and_no_python_to_build_it_fails_saying_how_to_make_it(tmp_path):
    with pytest.raises(RuntimeError) as raised:
        BUILD.ensure_horovod_wheel(HOROVOD_VERSION, BUILD.BOOKWORM, cache_root=tmp_path, python=tmp_path / "python")
    assert str(raised.value) == (
        "no Horovod wheel {root}/horovod/horovod-0.28.1-cp311-cp311-linux_x86_64.whl, and no {root}/python to "
        "build it with; build it with `MX_TRAINING_CACHE={root} bash scripts/install_horovod.sh PYTHON`, "
        "PYTHON being the python of a Python 3.11 virtual environment with mxnet (`pip install -e '.[mxnet]'`), "
        "then run build.py again".format(root=tmp_path))


def _build_py(*args, **env):
    began = time.monotonic()
    proc = subprocess.run([sys.executable, str(ds.REPO_ROOT / "docker" / "build.py"), *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})
    print("build.py %s: exit %d after %.1f s" % (" ".join(args), proc.returncode, time.monotonic() - began))
    return proc


def test_build_py_without_a_cached_horovod_wheel_and_no_build_fails_clearly(tmp_path):
    # Not --local: it fails before anything needs the engine (after the toolkit wheel, ~5 s).
    proc = _build_py("--flavor", "cpu", "--tag", "mx-training-toolkit:never-built", "--no-build-horovod",
                     MX_TRAINING_CACHE=str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    failed = [line for line in proc.stderr.splitlines() if line.startswith("[build.py] FAILED")]
    assert failed == [
        "[build.py] FAILED: no Horovod wheel {root}/horovod/horovod-0.28.1-cp311-cp311-linux_x86_64.whl; build it "
        "with `MX_TRAINING_CACHE={root} bash scripts/install_horovod.sh PYTHON`, PYTHON being the python of a "
        "Python 3.11 virtual environment with mxnet (`pip install -e '.[mxnet]'`), then run build.py again"
        .format(root=tmp_path)], proc.stderr


def test_the_gpu_builder_export_is_reused_unless_what_the_builder_uses_changes(tmp_path):
    requirements = BUILD.FLAVORS["gpu"].requirements.read_text()
    cached = BUILD.horovod_export_dir("gpu", requirements, "builder:1", tmp_path)
    assert cached.parent == tmp_path
    # A library the builder stage does not install leaves the cached Horovod build valid ...
    assert BUILD.horovod_export_dir("gpu", requirements + "pandas==2.2.3\n", "builder:1", tmp_path) == cached
    # ... another MXNet, NCCL or Horovod pin, or another builder image, does not.
    for changed, builder in ((requirements.replace("nvidia-nccl-cu11==2.21.5", "nvidia-nccl-cu11==2.20.5"), "builder:1"),
                             (requirements.replace("horovod==0.28.1", "horovod==0.28.0"), "builder:1"),
                             (requirements, "builder:2")):
        assert changed != requirements or builder != "builder:1"
        assert BUILD.horovod_export_dir("gpu", changed, builder, tmp_path) != cached
    assert BUILD.cuda_stub(builder_image="builder:1", cache_dir=tmp_path) is None  # nothing cached there


def test_every_build_of_a_flavor_uses_the_same_emptied_context_directory(tmp_path, monkeypatch):
    # BuildKit keys its copy of a build context by the directory's path: one path per flavor.
    monkeypatch.setattr(BUILD, "CONTEXT_DIR", tmp_path / "context")
    with BUILD.build_context("gpu") as first:
        (first / "left-over").write_text("x")
    assert not first.exists()
    with BUILD.build_context("gpu") as second:
        assert second == first == tmp_path / "context" / "gpu"
        assert list(second.iterdir()) == []
    with BUILD.build_context("cpu") as other:
        assert other == tmp_path / "context" / "cpu"


def test_a_missing_horovod_wheel_is_built_with_scripts_install_horovod_sh(tmp_path, monkeypatch):
    # A stand-in for the script (the real build takes minutes): it must be run with the venv's python
    # as its argument and MX_TRAINING_CACHE naming the cache it fills; a failure of it is reported.
    script = tmp_path / "install_horovod.sh"
    script.write_text('set -eu\necho "$1" > "$MX_TRAINING_CACHE/argument"\n'
                      '[ "${FAIL:-}" = 1 ] && exit 7\n'
                      'mkdir -p "$MX_TRAINING_CACHE/horovod"\n'
                      ': > "$MX_TRAINING_CACHE/horovod/horovod-$HOROVOD_VERSION-cp311-cp311-linux_x86_64.whl"\n')
    monkeypatch.setattr(BUILD, "HOROVOD_SCRIPT", script)
    python = BUILD.HOST_VENV_PYTHON if BUILD.HOST_VENV_PYTHON.exists() else sys.executable
    if BUILD._python_version(python) != "3.11":
        pytest.skip("needs a Python 3.11 to stand for the venv's")
    monkeypatch.setenv("FAIL", "1")
    with pytest.raises(RuntimeError) as raised:
        BUILD.ensure_horovod_wheel(HOROVOD_VERSION, BUILD.BOOKWORM, cache_root=tmp_path, python=python)
    assert str(raised.value) == (
        "scripts/install_horovod.sh %s failed (exit status 7), so there is no %s/horovod/horovod-0.28.1-cp311-"
        "cp311-linux_x86_64.whl; its output above says why" % (python, tmp_path))
    monkeypatch.delenv("FAIL")
    wheel = BUILD.ensure_horovod_wheel(HOROVOD_VERSION, BUILD.BOOKWORM, cache_root=tmp_path, python=python)
    assert wheel == tmp_path / "horovod" / "horovod-0.28.1-cp311-cp311-linux_x86_64.whl"
    assert wheel.exists()
    assert (tmp_path / "argument").read_text() == "%s\n" % python
