"""The CPU image driven by the real SageMaker Python SDK (``sagemaker<3``) in local mode, the way
users try a job before they pay for instances.

The SDK lives in its own virtual environment (``.sdk-venv``, which .ci/run makes; another one with
``MXTT_SDK_PYTHON``), so the project's stays clean: each job is one run of ``sdk_driver.py`` in that
Python, offline (a region, fake credentials, no AWS configuration files; see the driver). The
assertions are on what the SDK hands its user: ``model.tar.gz`` and ``output.tar.gz`` in the
output path, and the exception ``fit()`` raises.

How local mode runs a job (SDK 2.x, ``sagemaker/local/image.py``), and what the suite does about it:

- It writes a compose file and runs ``docker-compose up --abort-on-container-exit`` (or
  ``docker compose``): the first container to exit stops the others, and its exit status is the
  job's (0 and 130 count as success; anything else raises ``RuntimeError: Failed to run ...
  Process exited with code: N``). So a host that left before the job ended would cut the others
  short: the multi-host scripts save their model a few seconds after their own work is done, on
  the first host only, and the model is there only if the other hosts wait for the whole job.
- Host names are ``algo-<i>-<5 random characters>``, reached by a network alias on the bridge
  network ``sagemaker-local``; a container's own hostname is its id, not its host name. The SDK
  sets no ``SM_*`` variable; every value in hyperparameters.json is JSON-encoded.
- ``/opt/ml/model`` is ONE directory shared by every host (only the first host saves); each host's
  ``/opt/ml/output`` is merged into ``output.tar.gz`` (same names overwrite each other).
- It never runs ``compose down``: the containers and the network stay. Each run here removes the
  containers its compose file names; the module creates ``sagemaker-local`` when it is missing
  (to know its gateway before the first job) and removes it then.
- docker-compose pulls an image tag it does not find, so the image is checked before each job.
- Code from S3: with ``LocalSession(s3_endpoint_url=...)`` and ``code_location`` the SDK uploads
  ``sourcedir.tar.gz`` there and sets ``AWS_ENDPOINT_URL_S3`` in every container. The S3 server is
  moto's, listening on the network's gateway, which the containers reach.

Needs a Docker engine, ``docker-compose`` (or the compose plugin) and the SDK's venv; without them
it fails when CI=true and skips elsewhere.
"""

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import docker_support as ds

cpu_image = ds.cpu_image

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "sdk_driver.py"
SDK_PYTHON = Path(os.environ.get("MXTT_SDK_PYTHON", ds.REPO_ROOT / ".sdk-venv" / "bin" / "python"))
NETWORK = "sagemaker-local"  # the SDK's compose file names this network
BUCKET = "sdk-local-mode-code"  # moto keeps buckets per process: other tests use "training-code"
JOB_TIMEOUT = 240  # seconds for one job, from the SDK's start to its return
SDK_ENV = {
    # What offline local mode needs: a region, credentials (never used, but copied into the
    # containers), no AWS configuration from this machine, no instance-metadata lookups.
    "AWS_DEFAULT_REGION": "us-west-2",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    "PYTHONUNBUFFERED": "1",
}


def unavailable(message):
    if ds.in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def compose_available():
    """Whether the SDK finds a compose: ``docker compose`` (the plugin) or ``docker-compose``."""
    try:
        if subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30).returncode == 0:
            return True
    except (OSError, subprocess.TimeoutExpired):
        pass
    return shutil.which("docker-compose") is not None


@pytest.fixture(scope="module")
def sdk(cpu_image):
    """The SDK's Python, checked: ``sagemaker`` 2.x is installed there, and a compose is on PATH."""
    if not SDK_PYTHON.exists():
        unavailable("no SageMaker SDK venv at %s: python3 -m venv .sdk-venv && .sdk-venv/bin/pip install "
                    "'sagemaker<3' (or set MXTT_SDK_PYTHON)" % SDK_PYTHON)
    # (The version from the package's metadata: importing sagemaker takes seconds.)
    proc = subprocess.run([str(SDK_PYTHON), "-c", "import importlib.metadata as m; print(m.version('sagemaker'))"],
                          capture_output=True, text=True, timeout=60)
    version = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or not version.startswith("2."):
        unavailable("%s has no sagemaker 2.x (%r): %s" % (SDK_PYTHON, version, proc.stderr[-500:]))
    if not compose_available():
        unavailable("neither `docker compose` nor `docker-compose` works; apt-get install docker-compose")
    return SDK_PYTHON


@pytest.fixture(scope="module")
def gateway(sdk):
    """The address of the host on ``sagemaker-local``, which every job here uses: made here when
    missing (and removed afterwards), so that it exists before the first job and no job leaves it."""
    created = False
    if ds.docker("network", "inspect", NETWORK, check=False).returncode != 0:
        # (No label of ours: docker-compose would log that the network's labels differ from its own.)
        proc = ds.docker("network", "create", NETWORK, check=False)
        created = proc.returncode == 0
        if not created and ds.docker("network", "inspect", NETWORK, check=False).returncode != 0:
            raise RuntimeError("cannot create the network %s: %s" % (NETWORK, proc.stderr.strip()))
    try:
        address = ds.docker("network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}} {{end}}",
                            NETWORK).stdout.split()[0]
        yield address
    finally:
        if created:  # fails, and leaves it, while another job still uses it
            ds.docker("network", "rm", NETWORK, check=False)


@pytest.fixture(scope="module")
def fake_s3(gateway):
    """(endpoint URL, boto3 client) of moto's S3 server on the gateway, with one bucket."""
    import boto3  # the test extra's, like moto
    from moto import server as moto_server

    with socket.socket() as s:
        s.bind((gateway, 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address=gateway, port=port, verbose=False)
    server.start()
    endpoint = "http://%s:%d" % (gateway, port)
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-west-2",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        yield endpoint, client
    finally:
        server.stop()


@pytest.fixture
def workdir(cpu_image, gateway):
    root = Path(tempfile.mkdtemp(prefix=ds.RUN_ID + "-sdk-"))
    try:
        yield root
    finally:
        ds.remove_tree(root, cpu_image)


@dataclass
class SdkRun:
    """One job through the SDK: what ``fit()`` did and the archives it left in the output path."""

    ok: bool
    error_type: str
    error: str
    model_data: str
    output: str  # the driver's stdout and stderr: the SDK's log and the containers' output
    output_dir: Path
    seconds: float

    def members(self, archive):
        """The files in ``model.tar.gz`` or ``output.tar.gz``, sorted."""
        with tarfile.open(self.output_dir / archive) as tar:
            return sorted(m.name for m in tar.getmembers() if m.isfile())

    def read(self, archive, member):
        with tarfile.open(self.output_dir / archive) as tar:
            return tar.extractfile(member).read().decode("utf-8", errors="replace")

    def read_json(self, archive, member):
        return json.loads(self.read(archive, member))

    @property
    def exit_code(self):
        """The status in the SDK's ``RuntimeError`` (the first container's to exit), or None."""
        found = re.search(r"Process exited with code: (-?\d+)", self.error or "")
        return int(found.group(1)) if found else None

    def explain(self):
        return "fit() %s after %.1f s: %s: %s\n--- output (last part):\n%s" % (
            "returned" if self.ok else "raised", self.seconds, self.error_type, self.error, self.output[-8000:])


def compose_containers(container_root):
    """The container names in the compose files the SDK wrote under ``container_root``."""
    names = []
    for path in glob.glob(os.path.join(container_root, "*", "docker-compose.yaml")):
        with open(path) as f:  # YAML as the SDK writes it: one "container_name: NAME" line per host
            names += re.findall(r"^\s*container_name:\s*'?([\w.-]+)'?\s*$", f.read(), re.MULTILINE)
    return names


def remove_containers(names):
    """Remove the SDK's containers (it leaves them behind); raise if one is still there."""
    ds.remove(names)
    left = [n for n in names if ds.docker("container", "inspect", n, check=False).returncode == 0]
    if left:
        raise AssertionError("containers left behind: %s" % left)


def run_sdk(image, workdir, code, entry_point, instance_count=1, hyperparameters=None, distribution=None,
            s3=None):
    """Run one job through the SDK with the files ``code`` (name -> path under test/resources) as its
    source directory; from S3 when ``s3`` (the fake_s3 fixture) is given. Returns an ``SdkRun``."""
    if ds.docker("image", "inspect", image, check=False).returncode != 0:  # compose would try to pull it
        raise AssertionError("image %s is missing" % image)
    source_dir, output_dir, container_root = workdir / "source", workdir / "output", workdir / "containers"
    for path in (source_dir, output_dir, container_root):
        path.mkdir()
    for name, resource in code.items():
        shutil.copy(ds.RESOURCES / resource, source_dir / name)
    spec = {"image": image, "entry_point": entry_point, "source_dir": str(source_dir),
            "instance_count": instance_count, "hyperparameters": hyperparameters or {},
            "distribution": distribution, "output_path": "file://%s" % output_dir,
            "container_root": str(container_root)}
    if s3 is not None:
        spec["s3_endpoint_url"] = s3[0]
        spec["code_location"] = "s3://%s/sdk-jobs" % BUCKET
    spec_file, result_file = workdir / "spec.json", workdir / "result.json"
    spec_file.write_text(json.dumps(spec))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON", "S3_", "SAGEMAKER_"))}
    env.update(SDK_ENV)
    env["NO_PROXY"] = ",".join(filter(None, [env.get("NO_PROXY"), "127.0.0.1", s3[0].split("//")[1] if s3 else ""]))
    started = time.monotonic()
    proc = subprocess.Popen([str(SDK_PYTHON), str(DRIVER), str(spec_file), str(result_file)], cwd=str(workdir),
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=JOB_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its docker-compose
        output, _ = proc.communicate()
        raise AssertionError("the SDK's job did not end within %d s:\n%s" % (
            JOB_TIMEOUT, output.decode(errors="replace")[-8000:]))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        remove_containers(compose_containers(str(container_root)))
    seconds = time.monotonic() - started
    output = output.decode(errors="replace")
    if not result_file.exists():
        raise AssertionError("the driver wrote no result (exit status %d):\n%s" % (proc.returncode, output[-8000:]))
    result = json.loads(result_file.read_text())
    run = SdkRun(result["ok"], result["error_type"], result["error"], result["model_data"], output, output_dir,
                 seconds)
    print("SDK job %s: %.1f s" % (entry_point, seconds), file=sys.stderr)
    return run


def test_script_job_with_its_code_from_s3(cpu_image, sdk, fake_s3, workdir):
    """1 host; the SDK uploads the code to (fake) S3 and the container downloads it through the
    AWS_ENDPOINT_URL_S3 local mode sets."""
    endpoint, client = fake_s3
    run = run_sdk(cpu_image, workdir, {"train.py": "container/succeed.py"}, "train.py",
                  hyperparameters={"epochs": 2}, s3=fake_s3)
    assert run.ok, run.explain()
    assert run.model_data == "file://%s/model.tar.gz" % run.output_dir
    assert run.members("model.tar.gz") == ["model.txt"], run.explain()
    assert run.read("model.tar.gz", "model.txt") == "trained for 2 epochs\n"
    assert run.members("output.tar.gz") == ["success"], run.explain()
    [key] = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="sdk-jobs/")["Contents"]
             if o["Key"].endswith("/source/sourcedir.tar.gz")]
    assert "code: downloaded s3://%s/%s into /opt/ml/code" % (BUCKET, key) in run.output, run.explain()
    assert re.search(r"succeed: epochs=2 host=algo-1-\w{5} hosts=\[\"algo-1-\w{5}\"\]", run.output), run.explain()


def test_parameter_server_job_on_two_hosts(cpu_image, sdk, workdir):
    run = run_sdk(cpu_image, workdir, {"train.py": "sdk/ps_sum.py"}, "train.py", instance_count=2,
                  distribution={"parameter_server": {"enabled": True}})
    assert run.ok, run.explain()
    # Saved by the first host 3 s after the workers' work: the other host waited for it.
    assert run.members("model.tar.gz") == ["ps-sum.json"], run.explain()
    assert run.read_json("model.tar.gz", "ps-sum.json") == {"workers": 2, "sum": [[3.0] * 3] * 2}
    assert run.members("output.tar.gz") == ["data/sum-0.json", "data/sum-1.json", "success"], run.explain()
    reports = [run.read_json("output.tar.gz", "data/sum-%d.json" % rank) for rank in (0, 1)]
    assert sorted(r["host_index"] for r in reports) == [0, 1]
    assert all(r["workers"] == 2 and r["sum"] == [[3.0] * 3] * 2 for r in reports), reports


def test_horovod_job_on_two_hosts_with_two_ranks_each(cpu_image, sdk, workdir):
    run = run_sdk(cpu_image, workdir, {"train.py": "sdk/hvd_sum.py"}, "train.py", instance_count=2,
                  distribution={"mpi": {"enabled": True, "processes_per_host": 2}})
    assert run.ok, run.explain()
    # Saved by rank 0 3 s after the allreduce: the other host waited for it.
    assert run.members("model.tar.gz") == ["hvd-sum.json"], run.explain()
    assert run.read_json("model.tar.gz", "hvd-sum.json") == {"size": 4, "sum": [10.0] * 3}
    ranks = ["data/rank-%d.json" % rank for rank in range(4)]
    assert run.members("output.tar.gz") == ranks + ["success"], run.explain()
    reports = [run.read_json("output.tar.gz", name) for name in ranks]
    assert sorted((r["host_index"], r["local_rank"]) for r in reports) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(r["size"] == 4 and r["local_size"] == 2 and r["sum"] == [10.0] * 3 for r in reports), reports


def test_legacy_job(cpu_image, sdk, workdir):
    """A script with train() and no main: the runner calls it and the default save writes the model."""
    run = run_sdk(cpu_image, workdir, {"legacy.py": "legacy/module_train.py"}, "legacy.py",
                  hyperparameters={"epochs": 2})
    assert run.ok, run.explain()
    assert run.members("model.tar.gz") == ["model-0000.params", "model-shapes.json", "model-symbol.json"], \
        run.explain()
    assert json.loads(run.read("model.tar.gz", "model-shapes.json")) == [{"name": "data", "shape": [16, 5]}]
    assert run.members("output.tar.gz") == ["data/inputs.npy", "data/predictions.npy", "success"], run.explain()


def test_failing_job_raises_with_the_scripts_status_and_the_failure_reason(cpu_image, sdk, workdir):
    run = run_sdk(cpu_image, workdir, {"train.py": "container/fail.py"}, "train.py")
    assert not run.ok, run.explain()
    assert run.error_type == "RuntimeError", run.explain()
    assert run.exit_code == 3, run.explain()  # the script's own status (local mode counts 0 and 130 as success)
    assert run.members("model.tar.gz") == [], run.explain()  # the SDK writes it even for a failed job
    assert run.members("output.tar.gz") == ["failure"], run.explain()
    reason = run.read("output.tar.gz", "failure")[:1024]  # what the platform shows as FailureReason
    assert reason.splitlines()[0] == "User script failed: train.py exited with status 3", reason
    assert "FileNotFoundError: training data not found in the container" in reason, reason
