"""Run the training images as containers: engine check, image build, job directories, jobs.

The container tests use these through the fixtures at the bottom. Every container and network
created carries the label ``mx-training-toolkit.test-run=<RUN_ID>``, so one sweep at the end of the
session removes whatever a failed test left behind. Jobs run on ``--internal`` networks created
here: containers get name resolution between them but no route to anything else.

A job directory is mounted as ``/opt/ml``; files the launcher and the user script write there can be
read from the host while the container runs and after it exits.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .support import Job

REPO_ROOT = Path(__file__).resolve().parents[2]
RESOURCES = REPO_ROOT / "test" / "resources"
CONTAINER_RESOURCES = RESOURCES / "container"
RUN_ID = "mxtt-" + uuid.uuid4().hex[:8]
LABEL = "mx-training-toolkit.test-run"
CPU_TEST_IMAGE = os.environ.get("MXTT_TEST_IMAGE", "mx-training-toolkit:cpu-test")
GPU_TEST_IMAGE = os.environ.get("MXTT_GPU_TEST_IMAGE", "mx-training-toolkit:gpu-test")
DEFAULT_TIMEOUT = 180


def load_build_module():
    """docker/build.py, imported from its path (docker/ is not a package)."""
    spec = importlib.util.spec_from_file_location("mxtt_docker_build", REPO_ROOT / "docker" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load_build_module()
DOCKER = build.docker_client().argv


def docker(*args, check=True, timeout=120, **kwargs):
    """Run one docker command; return the CompletedProcess (text, output captured)."""
    proc = subprocess.run([*DOCKER, *[str(a) for a in args]], capture_output=True, text=True,
                          timeout=timeout, **kwargs)
    if check and proc.returncode != 0:
        raise RuntimeError("docker %s failed (%d): %s" % (" ".join(map(str, args)), proc.returncode,
                                                          proc.stderr.strip()))
    return proc


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_engine():
    """Fail loudly when no engine answers in CI; elsewhere skip the container tests."""
    try:
        # (`docker info` reports a missing daemon on stdout; `docker version` says it on stderr.)
        proc = docker("version", "--format", "{{.Server.Version}}", check=False, timeout=30)
        problem = None if proc.returncode == 0 else " ".join(proc.stderr.split())[-300:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = str(exc)
    if problem is None:
        return
    message = "no Docker engine (%s); run .ci/docker-up.sh" % problem
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# --- job directories ----------------------------------------------------------------------------

@dataclass
class ContainerResult:
    """What one container did: its exit status, its output, and its /opt/ml on the host."""

    name: str
    host: str
    returncode: int
    logs: str
    base: Path
    seconds: float

    def read(self, *parts):
        path = self.base.joinpath(*parts)
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else None

    @property
    def failure(self):
        return self.read("output", "failure")

    @property
    def failure_first_line(self):
        return self.failure.splitlines()[0] if self.failure else None

    @property
    def succeeded(self):
        return self.base.joinpath("output", "success").exists()

    def explain(self):
        """Everything useful for an assertion message."""
        return "container %s (%s) exited %s after %.1f s\n--- failure file:\n%s\n--- logs:\n%s" % (
            self.name, self.host, self.returncode, self.seconds, self.failure, self.logs[-6000:])


class JobDir(Job):
    """One host's /opt/ml, built on the host: config files, code, then mounted into a container.
    ``path()`` gives ``Path`` objects; the config files are written as for host-side jobs."""

    def __init__(self, base, current_host="algo-1", hosts=("algo-1",)):
        super().__init__(base)
        self.base = Path(base)
        self.resource_config = {"current_host": current_host, "hosts": list(hosts)}
        self.hyperparameters["sagemaker_submit_directory"] = json.dumps("/opt/ml/code")
        for sub in ("input/data", "model", "output"):
            self.path(sub).mkdir(parents=True, exist_ok=True)

    @property
    def current_host(self):
        return self.resource_config["current_host"]

    def path(self, *parts):
        return self.base.joinpath(*parts)

    def add_code(self, name, text=None, resource=None, shared=None):
        """Put a file into code/: given text, a copy of test/resources/container/<resource>, or a
        copy of test/resources/<shared> (resources the host-side tests use too, e.g. "ps/dist_sum.py")."""
        dest = self.path("code", name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if resource is not None or shared is not None:
            source = CONTAINER_RESOURCES / resource if resource is not None else RESOURCES / shared
            if source.is_dir():
                shutil.copytree(source, dest)
            else:
                shutil.copy(source, dest)
        else:
            dest.write_text(text)
        return dest


def make_job_dirs(root, hosts):
    """One JobDir per host under `root` (root/algo-1, root/algo-2, ...)."""
    return [JobDir(Path(root) / host, host, hosts) for host in hosts]


def host_names(count):
    return ["algo-%d" % (i + 1) for i in range(count)]


# --- containers ---------------------------------------------------------------------------------

def unique_name(kind):
    return "%s-%s-%s" % (RUN_ID, kind, uuid.uuid4().hex[:6])


def create_network():
    """A user-defined network with no route out; return its name."""
    name = unique_name("net")
    docker("network", "create", "--internal", "--label", "%s=%s" % (LABEL, RUN_ID), name)
    return name


def start_container(image, job, network, env=None, extra_args=(), command=("train",)):
    """Start one container for `job` (a JobDir) as host `job.current_host`; return its name."""
    job.write_config()
    name = unique_name(job.current_host)
    argv = ["run", "-d", "--name", name, "--label", "%s=%s" % (LABEL, RUN_ID),
            "--hostname", job.current_host, "--network", network, "--network-alias", job.current_host,
            "-v", "%s:/opt/ml" % job.base]
    for key, value in (env or {}).items():
        argv += ["-e", "%s=%s" % (key, value)]
    docker(*argv, *extra_args, image, *command)
    return name


def exit_code(name):
    """The container's exit status, or None while it runs."""
    state = json.loads(docker("inspect", "-f", "{{json .State}}", name).stdout)
    return None if state["Running"] else state["ExitCode"]


def logs(name):
    proc = docker("logs", name, check=False)
    return proc.stdout + proc.stderr


def remove(names):
    if names:
        docker("rm", "-f", *names, check=False)


def result_of(name, job, started):
    return ContainerResult(name, job.current_host, exit_code(name), logs(name), job.base,
                           time.monotonic() - started)


def wait_all(names, timeout, stop_others_on_failure=True, stop_timeout=10):
    """Wait until every container has exited (or the timeout passes: then stop them all and raise).

    Once one exits non-zero the others are stopped: a failed peer can leave the rest of a
    parameter-server job blocked forever.
    """
    deadline = time.monotonic() + timeout
    pending = set(names)
    while pending:
        for name in sorted(pending):
            code = exit_code(name)
            if code is None:
                continue
            pending.discard(name)
            if code != 0 and stop_others_on_failure and pending:
                docker("stop", "-t", stop_timeout, *sorted(pending), check=False, timeout=stop_timeout + 60)
        if pending and time.monotonic() > deadline:
            docker("stop", "-t", stop_timeout, *sorted(pending), check=False, timeout=stop_timeout + 60)
            raise TimeoutError("containers still running after %s s: %s" % (timeout, sorted(pending)))
        if pending:
            time.sleep(0.2)


def run_job(image, jobs, env=None, timeout=DEFAULT_TIMEOUT, network=None, extra_args=()):
    """Run one container per JobDir on one network (created here unless given), wait for all;
    return their ContainerResults in the order of `jobs`. Containers (and a network created
    here) are removed afterwards, whatever happens. `extra_args`: more `docker run` arguments."""
    own_network = network is None
    network = network or create_network()
    names = []
    try:
        started = time.monotonic()
        for job in jobs:
            names.append(start_container(image, job, network, env=env, extra_args=extra_args))
        try:
            wait_all(names, timeout)
        except TimeoutError as exc:
            details = "\n".join(result_of(n, j, started).explain() for n, j in zip(names, jobs))
            raise AssertionError("%s\n%s" % (exc, details)) from exc
        return [result_of(name, job, started) for name, job in zip(names, jobs)]
    finally:
        remove(names)
        if own_network:
            docker("network", "rm", network, check=False)


def wait_for_exit(name, timeout):
    """Wait until container `name` exits; its exit status, or None if it still runs at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        code = exit_code(name)
        if code is not None or time.monotonic() > deadline:
            return code
        time.sleep(0.1)


def wait_for_log(names, marker, timeout=120):
    """Wait until every container in `names` has printed `marker`; True then, False if one exited
    first or time ran out."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    while time.monotonic() < deadline:
        pending = [name for name in pending if marker not in logs(name)]
        if not pending:
            return True
        if any(exit_code(name) is not None for name in pending):
            return False
        time.sleep(0.2)
    return False


def wait_for_file(path, name, timeout=60):
    """Wait until `path` exists while container `name` runs; False if it exited or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(path).exists():
            return True
        if exit_code(name) is not None:
            return False
        time.sleep(0.1)
    return False


def fake_gpu_args(job_root, count):
    """docker run arguments that give a container ``count`` GPUs' device files without a GPU: an
    empty file bind-mounted at /dev/nvidia<N>, where the launcher counts GPUs when the NVIDIA
    driver's /proc/driver/nvidia/gpus is absent (SM_NUM_GPUS, docs/contract.md section 3)."""
    device = Path(job_root) / "fake-gpu-device"
    device.touch()
    return [arg for n in range(count) for arg in ("-v", "%s:/dev/nvidia%d:ro" % (device, n))]


def run_with_gpus(image, jobs, gpus, network, job_root, timeout=150, extra_args=()):
    """Run one container per job, job i with gpus[i] fake GPUs; wait for all (none is stopped
    when another fails: each must end by itself) -> their results."""
    names = []
    started = time.monotonic()
    try:
        for job, count in zip(jobs, gpus):
            names.append(start_container(image, job, network, extra_args=[*fake_gpu_args(job_root, count),
                                                                          *extra_args]))
        wait_all(names, timeout, stop_others_on_failure=False)
        return [result_of(name, job, started) for name, job in zip(names, jobs)]
    finally:
        remove(names)


def horovod_jobs(job_root, script, **hyperparameters):
    """Two hosts, one rank each, the way the SDK's distribution={'mpi': {'enabled': True,
    'processes_per_host': 1}} writes them; Gloo on the containers' own interface."""
    jobs = make_job_dirs(job_root, host_names(2))
    for job in jobs:
        job.add_code(script, shared="horovod/" + script)
        job.entry(script, sagemaker_mpi_enabled=True, sagemaker_mpi_num_of_processes_per_host=1,
                  **hyperparameters)
        job.resource_config["network_interface_name"] = "eth0"
    return jobs


def check_two_rank_allreduce(results):
    """Assert what a finished ``horovod_jobs(..., "allreduce.py")`` job must show: both containers
    succeeded, rank 0 ran on algo-1 and rank 1 on algo-2 (one rank a host), and each rank's
    allreduce summed 1 + 2 into [3, 3, 3]."""
    for result in results:
        assert result.returncode == 0, result.explain()
        assert result.succeeded, result.explain()
    reports = [json.loads(result.read("output", "data", "rank-%d.json" % rank)) for rank, result in enumerate(results)]
    assert [(r["rank"], r["size"], r["local_rank"], r["local_size"], r["host"]) for r in reports] == [
        (0, 2, 0, 1, "algo-1"), (1, 2, 0, 1, "algo-2")], reports
    assert all(r["sum"] == [3.0, 3.0, 3.0] for r in reports), reports


def per_gpu_jobs(job_root):
    """Two hosts, the way the SDK writes distribution={'mpi': {'enabled': True}}: no
    processes_per_host, so that the container picks (one rank per GPU)."""
    jobs = make_job_dirs(job_root, host_names(2))
    for job in jobs:
        job.add_code("allreduce.py", shared="horovod/allreduce.py")
        job.entry("allreduce.py", sagemaker_mpi_enabled=True)
        job.resource_config["network_interface_name"] = "eth0"
    return jobs


def sweep():
    """Remove every container and network of this test run."""
    label = "label=%s=%s" % (LABEL, RUN_ID)
    containers = docker("ps", "-aq", "--filter", label, check=False).stdout.split()
    remove(containers)
    for network in docker("network", "ls", "-q", "--filter", label, check=False).stdout.split():
        docker("network", "rm", network, check=False)


def remove_tree(path, image):
    """Remove a job directory; containers write as root, so a non-root user first takes it back."""
    if os.geteuid() != 0 and Path(path).exists():
        docker("run", "--rm", "--network", "none", "-v", "%s:/opt/ml" % path, image,
               "chown", "-R", "%d:%d" % (os.geteuid(), os.getegid()), "/opt/ml", check=False)
    shutil.rmtree(path, ignore_errors=True)


# --- fixtures -----------------------------------------------------------------------------------

def ready_image(flavor, tag):
    """Build ``flavor``'s image as ``tag`` from the working tree on the local bases, or, with
    MXTT_SKIP_IMAGE_BUILD set (.ci/run builds them first), use ``tag`` as it is when it exists."""
    if os.environ.get("MXTT_SKIP_IMAGE_BUILD") and docker("image", "inspect", tag, check=False).returncode == 0:
        print("using the existing image %s" % tag)
        return
    timings = {}
    build.build(flavor, tag, local=True, timings=timings)
    print("image stages: %s" % timings)


@pytest.fixture(scope="session")
def cpu_image():
    """The CPU image, built for this session from the working tree on the local base (the engine
    must be up); every container and network of the session is removed at the end."""
    require_engine()
    ready_image("cpu", CPU_TEST_IMAGE)
    try:
        yield CPU_TEST_IMAGE
    finally:
        sweep()


@dataclass(frozen=True)
class GpuImage:
    """The GPU image and the docker run arguments that mount the builder's libcuda.so.1 stub where
    the NVIDIA container toolkit would mount the driver's (the image has none: without a driver,
    importing mxnet-cu112 fails)."""

    name: str
    stub: Path

    @property
    def stub_args(self):
        return ["-v", "%s:/usr/lib/x86_64-linux-gnu/libcuda.so.1:ro" % self.stub]


@pytest.fixture(scope="session")
def gpu_image():
    """The complete GPU image (Horovod with NCCL), built for this session from the working tree on
    the local bases, with the libcuda.so.1 stub its builder stage exported (cached on the host)."""
    require_engine()
    ready_image("gpu", GPU_TEST_IMAGE)
    stub = build.cuda_stub()
    if stub is None:
        pytest.fail("no libcuda.so.1 stub in %s: build the image with docker/build.py --flavor gpu --local"
                    % build.HOROVOD_EXPORT_DIR, pytrace=False)
    try:
        yield GpuImage(GPU_TEST_IMAGE, stub)
    finally:
        sweep()


@contextmanager
def _job_root(image):
    root = Path(tempfile.mkdtemp(prefix=RUN_ID + "-job-"))
    try:
        yield root
    finally:
        remove_tree(root, image)


@contextmanager
def _job_network():
    name = create_network()
    try:
        yield name
    finally:
        sweep_network_containers(name)
        docker("network", "rm", name, check=False)


@pytest.fixture
def gpu_job_root(gpu_image):
    with _job_root(gpu_image.name) as root:
        yield root


@pytest.fixture
def gpu_job_network(gpu_image):
    with _job_network() as name:
        yield name


@pytest.fixture
def job_root(cpu_image):
    """A temporary directory for this test's job directories, removed afterwards."""
    with _job_root(cpu_image) as root:
        yield root


@pytest.fixture
def container_job(job_root):
    """A single-host job directory (algo-1)."""
    return JobDir(job_root / "algo-1")


@pytest.fixture
def job_network(cpu_image):
    """An --internal network for this test, removed afterwards."""
    with _job_network() as name:
        yield name


def sweep_network_containers(network):
    names = docker("ps", "-aq", "--filter", "network=%s" % network, check=False).stdout.split()
    remove(names)
