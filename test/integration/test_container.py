"""The CPU image run as a container, the way the platform runs it: `docker run IMAGE train` with the
job's /opt/ml mounted. Needs a Docker engine (.ci/docker-up.sh); fails without one when CI=true."""

import json
import time

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
    assert result.returncode == 3, result.explain()
    assert not result.succeeded
    assert "user script failed" in result.failure_first_line.lower(), result.explain()
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
    assert result.returncode == 7, result.explain()
    assert stop_seconds < stop_timeout
    assert container_job.path("output", "data", "got-sigterm").exists(), result.explain()
    assert "SIGTERM" in result.failure_first_line, result.explain()


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


def test_killing_one_container_ends_the_job_on_the_other(cpu_image, job_root, job_network):
    jobs = _dist_sum_jobs(job_root, steps=400, sleep=0.05)
    names = []
    started = time.monotonic()
    try:
        for job in jobs:
            names.append(ds.start_container(cpu_image, job, job_network))
        training = ds.wait_for_log(names, "dist_sum: pulled sum", timeout=60)
        assert training, "\n".join(ds.result_of(n, j, started).explain() for n, j in zip(names, jobs))
        killed_at = time.monotonic()
        ds.docker("kill", names[1])
        code = ds.wait_for_exit(names[0], timeout=45)
        seconds = time.monotonic() - killed_at
        result = ds.result_of(names[0], jobs[0], started)
    finally:
        ds.remove(names)
    first = result.failure_first_line
    print("algo-1 exited %s, %.2f s after docker kill algo-2; failure: %s" % (code, seconds, first))
    assert code is not None and code != 0, result.explain()
    assert seconds < 30, result.explain()
    assert first is not None, result.explain()
    assert "algo-2" in first and ("lost" in first or "server" in first), result.explain()
    assert _model_files(jobs[0]) == [], result.explain()


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
