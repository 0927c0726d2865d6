"""Where the code comes from (docs/contract.md section 4, steps 1-2), through the real ``train`` command.

S3 is a real S3 API: moto's standalone server on a loopback port, reached with boto3 through
``S3_ENDPOINT_URL``. pip runs offline (``PIP_NO_INDEX``) and installs into a per-test
``PIP_TARGET``, so nothing is added to the environment the tests run in.
"""

import io
import json
import os
import signal
import subprocess
import tarfile
import textwrap
import time

import pytest

from fake_s3 import CREDENTIALS, SilentEndpoint

from .support import free_port, snapshot

MAIN = textwrap.dedent("""\
    import os, sys
    from lib import helper
    print("ran", helper.WORDS, "cwd=" + os.getcwd(), "args=" + " ".join(sys.argv[1:]))
""")
HELPER = "WORDS = 'from-the-submitted-code'\n"
TREE = {"train.py": MAIN, "lib/__init__.py": "", "lib/helper.py": HELPER}

def offline_pip(tmp_path, site="site"):
    """pip settings for ``train``: no index, no configured links, installs into ``tmp_path/site``."""
    links = tmp_path / "no-links"
    links.mkdir(exist_ok=True)
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(links), "PIP_CONFIG_FILE": os.devnull,
            "PIP_TARGET": str(tmp_path / site)}


def write_tree(root, files):
    for name, text in files.items():
        path = os.path.join(str(root), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return str(root)


def make_tarball(path, files, links=()):
    with tarfile.open(str(path), "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in links:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return str(path)


def assert_ran_submitted_code(result, job):
    assert result.returncode == 0, result.stderr
    assert result.succeeded
    assert "ran from-the-submitted-code cwd={} args=--epochs 2".format(job.code_dir) in result.stdout
    assert "code: downloaded" in result.stderr


# ---- local sources ----------------------------------------------------------------------------


def _local_dir(tmp):
    return write_tree(tmp / "src", TREE)


def _local_tarball(tmp):
    return make_tarball(tmp / "sourcedir.tar.gz", TREE, links=[("alias.py", "lib/helper.py")])


SOURCES = {
    "directory": _local_dir,
    "tar.gz": _local_tarball,
    "file-url-directory": lambda tmp: "file://" + _local_dir(tmp),
    "file-url-tar.gz": lambda tmp: "file://" + _local_tarball(tmp),
}


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_local_sources(job, tmp_path, kind):
    job.entry("train.py", epochs=2)
    job.hyperparameters["sagemaker_submit_directory"] = json.dumps(SOURCES[kind](tmp_path))
    result = job.run(timeout=60)
    assert_ran_submitted_code(result, job)
    assert "already has" not in result.stderr  # code/ was empty
    with open(os.path.join(job.code_dir, "lib", "helper.py")) as f:
        assert f.read() == HELPER
    if kind.endswith("tar.gz"):
        assert os.readlink(os.path.join(job.code_dir, "alias.py")) == "lib/helper.py"
    assert not [n for n in os.listdir(job.base) if n.startswith(".code-download")]


def test_submit_directory_from_the_environment(job, tmp_path):
    job.hyperparameters["epochs"] = "2"
    result = job.run(timeout=60, SAGEMAKER_PROGRAM="train.py",
                     SAGEMAKER_SUBMIT_DIRECTORY=_local_tarball(tmp_path))
    assert_ran_submitted_code(result, job)


def test_code_dir_that_already_has_files_is_logged(job, tmp_path):
    job.add_script("old.py", "OLD = 1\n")
    job.add_script("train.py", "print('the old entry point')\n")
    job.entry("train.py", epochs=2)
    source = _local_dir(tmp_path)
    job.hyperparameters["sagemaker_submit_directory"] = json.dumps(source)
    result = job.run(timeout=60)
    assert_ran_submitted_code(result, job)
    warnings = [line for line in result.stderr.splitlines() if "already has" in line]
    assert len(warnings) == 1, result.stderr
    assert "WARNING" in warnings[0] and job.code_dir in warnings[0] and source in warnings[0]
    assert "the old entry point" not in result.stdout
    assert os.path.exists(os.path.join(job.code_dir, "old.py"))  # merged over, as the reference does


def test_running_the_same_job_twice(job, tmp_path):
    """The second download lands on the first one's files (links included) and replaces them."""
    job.entry("train.py", epochs=2)
    job.hyperparameters["sagemaker_submit_directory"] = json.dumps(_local_tarball(tmp_path))
    first = job.run(timeout=60)
    assert_ran_submitted_code(first, job)
    second = job.run(timeout=60)
    assert_ran_submitted_code(second, job)
    assert "already has" in second.stderr
    assert os.readlink(os.path.join(job.code_dir, "alias.py")) == "lib/helper.py"


def test_code_in_place_without_submit_directory(job):
    write_tree(job.code_dir, TREE)
    job.entry("train.py", epochs=2)
    result = job.run(timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ran from-the-submitted-code" in result.stdout
    assert "using {} as it is".format(job.code_dir) in result.stderr


# ---- S3, on a real S3 API ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3():
    """(endpoint URL, boto3 client) of a moto S3 server on loopback, with one bucket."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = "http://127.0.0.1:{}".format(port)
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket="training-code")
        yield endpoint, client
    finally:
        server.stop()


def test_s3_source(job, tmp_path, s3):
    endpoint, client = s3
    client.upload_file(_local_tarball(tmp_path), "training-code", "jobs/j-1/source/sourcedir.tar.gz")
    job.entry("train.py", epochs=2)
    job.hyperparameters["sagemaker_submit_directory"] = json.dumps(
        "s3://training-code/jobs/j-1/source/sourcedir.tar.gz")
    result = job.run(timeout=60, S3_ENDPOINT_URL=endpoint, **CREDENTIALS)
    assert_ran_submitted_code(result, job)
    assert os.readlink(os.path.join(job.code_dir, "alias.py")) == "lib/helper.py"
    leftovers = [n for n in os.listdir(job.base) if n.startswith(".code-download") or n.endswith(".tar.gz")]
    assert leftovers == []


def test_s3_key_missing(job, s3):
    endpoint, _client = s3
    job.add_script("mine.py", "MINE = 1\n")
    job.entry("train.py")
    url = "s3://training-code/no/such/sourcedir.tar.gz"
    job.hyperparameters["sagemaker_submit_directory"] = json.dumps(url)
    os.makedirs(job.path("model"))
    code_before = snapshot(job.code_dir)
    result = job.run(timeout=60, S3_ENDPOINT_URL=endpoint, **CREDENTIALS)
    assert result.returncode == 3
    assert result.failure_first_line.startswith("Code download failed: cannot download " + url)
    assert "404" in result.failure_first_line or "Not Found" in result.failure_first_line
    assert "Traceback (most recent call last)" not in result.stderr
    assert snapshot(job.code_dir) == code_before
    assert [n for n in os.listdir(job.base) if n.endswith(".tar.gz") or n.startswith(".code-")] == []


def test_s3_bucket_missing(job, s3):
    endpoint, _client = s3
    job.entry("train.py")
    url = "s3://no-such-bucket/sourcedir.tar.gz"
    job.hyperparameters["sagemaker_submit_directory"] = json.dumps(url)
    result = job.run(timeout=60, S3_ENDPOINT_URL=endpoint, **CREDENTIALS)
    assert result.returncode == 3
    assert result.failure_first_line.startswith("Code download failed: cannot download " + url)


# ---- S3 endpoints that never answer, and what a killed download leaves ------------------------


@pytest.fixture
def silent_endpoint():
    endpoint = SilentEndpoint()
    try:
        yield endpoint
    finally:
        endpoint.close()


STALLED_URL = "s3://training-code/jobs/j-1/source/sourcedir.tar.gz"


def stalled_s3_job(job):
    job.add_script("mine.py", "MINE = 1\n")
    job.entry("train.py")
    job.hyperparameters["sagemaker_submit_directory"] = json.dumps(STALLED_URL)
    return job


def staging_dirs(job):
    return sorted(n for n in os.listdir(job.base) if n.startswith(".code-download"))


def test_sigterm_during_a_stalled_s3_download_stops_the_job_within_the_grace_period(job, silent_endpoint):
    stalled_s3_job(job)
    code_before = snapshot(job.code_dir)
    proc = job.start(S3_ENDPOINT_URL=silent_endpoint.url, **CREDENTIALS)
    try:
        assert silent_endpoint.wait_for_a_request(30), "train never asked the S3 endpoint for the code"
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        try:
            _out, err = proc.communicate(timeout=10)  # the default grace period
        except subprocess.TimeoutExpired:
            pytest.fail("train did not exit within 10 s of SIGTERM while its S3 download was stalled")
        stopped_after = time.monotonic() - signalled
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, err.decode(errors="replace")
    assert stopped_after < 5.0  # a download that is not interrupted would wait for the 30 s read timeout
    with open(job.path("output", "failure")) as f:
        assert f.read().splitlines()[0] == "Job stopped: the launcher received SIGTERM before the job finished"
    assert snapshot(job.code_dir) == code_before
    assert staging_dirs(job) == []


def test_s3_endpoint_that_never_answers_ends_the_download(job, silent_endpoint):
    stalled_s3_job(job)
    began = time.monotonic()
    result = job.run(timeout=60, S3_ENDPOINT_URL=silent_endpoint.url, MX_TRAINING_S3_TIMEOUT_SECONDS="1",
                     **CREDENTIALS)
    elapsed = time.monotonic() - began
    assert result.returncode == 3, result.stderr
    assert result.failure_first_line == (
        "Code download failed: cannot download {}: the S3 endpoint {} did not answer (no reply within 1 s, "
        "3 attempts)".format(STALLED_URL, silent_endpoint.url))
    assert len(silent_endpoint.connections) == 3
    assert elapsed < 20
    assert "Traceback (most recent call last)" not in result.stderr
    assert staging_dirs(job) == []


@pytest.mark.parametrize("value", ["0", "soon", "inf"])
def test_an_unusable_s3_timeout_is_a_configuration_error(job, silent_endpoint, value):
    # Until this version a bad value was logged and the defaults used; now it is refused at the
    # start, like every launcher setting, before any download is tried.
    stalled_s3_job(job)
    result = job.run(timeout=60, S3_ENDPOINT_URL=silent_endpoint.url, MX_TRAINING_S3_TIMEOUT_SECONDS=value,
                     **CREDENTIALS)
    assert result.returncode == 2, result.stderr
    assert result.failure_first_line == ("Configuration error: MX_TRAINING_S3_TIMEOUT_SECONDS={!r}: expected a "
                                         "number of seconds above 0 and at most 86400".format(value))
    assert silent_endpoint.connections == []
    assert staging_dirs(job) == []


def test_leftover_staging_directory_is_removed_by_the_next_run(job, tmp_path):
    leftover = job.path(".code-download-xyz")
    write_tree(leftover, {"code/train.py": "print('half-downloaded')\n", "code.tar.gz.3f9a1c": "partial"})
    job.entry("train.py", epochs=2)
    job.hyperparameters["sagemaker_submit_directory"] = json.dumps(_local_tarball(tmp_path))
    result = job.run(timeout=60)
    assert_ran_submitted_code(result, job)
    assert staging_dirs(job) == []
    lines = [line for line in result.stderr.splitlines() if ".code-download" in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith("code: removed {}, left by an earlier launch that stopped during its download"
                             .format(leftover))


def test_what_a_launcher_killed_during_its_download_leaves_is_removed_by_the_next_run(job, silent_endpoint):
    stalled_s3_job(job)
    proc = job.start(S3_ENDPOINT_URL=silent_endpoint.url, **CREDENTIALS)
    try:
        assert silent_endpoint.wait_for_a_connection(30), "train never reached the S3 endpoint"
    finally:
        proc.kill()
        proc.communicate()
    left = staging_dirs(job)
    assert len(left) == 1
    # the next run of the job (code already in code/) cleans up before anything else
    job.hyperparameters.pop("sagemaker_submit_directory")
    job.add_script("train.py", "print('second run')\n")
    result = job.run(timeout=60)
    assert result.returncode == 0, result.stderr
    assert "second run" in result.stdout
    assert staging_dirs(job) == []
    assert "code: removed {}, left by an earlier launch".format(job.path(left[0])) in result.stderr


def test_boto3_not_importable(job, tmp_path):
    shadow = tmp_path / "shadow"
    write_tree(shadow, {"boto3/__init__.py": "raise ImportError('No module named boto3')\n"})
    job.entry("train.py")
    job.hyperparameters["sagemaker_submit_directory"] = json.dumps("s3://training-code/sourcedir.tar.gz")
    result = job.run(timeout=60, PYTHONPATH=str(shadow))
    assert result.returncode == 3
    assert result.failure_first_line == (
        "Code download failed: cannot download s3://training-code/sourcedir.tar.gz: "
        "the boto3 package is not installed (pip install boto3)")
    assert "Traceback (most recent call last)" not in result.stderr


# ---- requirements.txt and setup.py, installed offline ----------------------------------------

# A PEP 517 build backend kept in the project itself, with no build requirements: pip can build
# the project without an index (a setuptools project needs setuptools from the index when pip
# isolates the build, which an offline job cannot do).
BACKEND = textwrap.dedent('''\
    import base64, hashlib, os, zipfile

    NAME, VERSION = {name!r}, "0.1"
    SKIP = {{"_backend.py", "setup.py"}}


    def _digest(data):
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        files = {{}}
        for name in sorted(os.listdir(".")):
            if name.endswith(".py") and name not in SKIP:
                with open(name, "rb") as f:
                    files[name] = f.read()
        info = "{{}}-{{}}.dist-info".format(NAME, VERSION)
        metadata = "Metadata-Version: 2.1\\nName: {{}}\\nVersion: {{}}\\n".format(NAME, VERSION)
        files[info + "/METADATA"] = metadata.encode()
        files[info + "/WHEEL"] = b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
        record = ["{{}},{{}},{{}}".format(p, _digest(d), len(d)) for p, d in files.items()] + [info + "/RECORD,,"]
        files[info + "/RECORD"] = ("\\n".join(record) + "\\n").encode()
        wheel = "{{}}-{{}}-py3-none-any.whl".format(NAME, VERSION)
        with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as z:
            for path, data in files.items():
                z.writestr(path, data)
        return wheel
''')
PYPROJECT = '[build-system]\nrequires = []\nbuild-backend = "_backend"\nbackend-path = ["."]\n'


def project(name, modules):
    """The files of an offline-buildable project named ``name`` holding ``modules``."""
    return {"pyproject.toml": PYPROJECT, "_backend.py": BACKEND.format(name=name), **modules}


USES_LOCALPKG = "import sm_test_localpkg\nprint('localpkg says', sm_test_localpkg.ANSWER, sm_test_localpkg.__file__)\n"


def _requirement_local_project(job, tmp):
    write_tree(os.path.join(job.code_dir, "localpkg"),
               project("sm_test_localpkg", {"sm_test_localpkg.py": "ANSWER = 42\n"}))
    return "./localpkg\n"


def _requirement_wheel_file(job, tmp):
    src = write_tree(tmp / "wheel-src", project("sm_test_localpkg", {"sm_test_localpkg.py": "ANSWER = 42\n"}))
    namespace = {}
    exec(compile(BACKEND.format(name="sm_test_localpkg"), "_backend.py", "exec"), namespace)
    dist = os.path.join(job.code_dir, "dist")
    os.makedirs(dist)
    cwd = os.getcwd()
    os.chdir(src)
    try:
        wheel = namespace["build_wheel"](dist)
    finally:
        os.chdir(cwd)
    return "./dist/{}\n".format(wheel)


@pytest.mark.parametrize("make", [_requirement_local_project, _requirement_wheel_file],
                         ids=["local-project", "wheel-file"])
def test_requirements_from_a_local_path(job, tmp_path, make):
    target = tmp_path / "site"
    job.add_script("train.py", USES_LOCALPKG)
    job.add_script("requirements.txt", make(job, tmp_path))
    job.entry("train.py")
    result = job.run(timeout=120, PYTHONPATH=str(target), **offline_pip(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "-m pip install --disable-pip-version-check --no-index -r requirements.txt" in result.stderr
    assert "localpkg says 42 {}".format(target / "sm_test_localpkg.py") in result.stdout
    assert any(n.startswith("sm_test_localpkg-0.1.dist-info") for n in os.listdir(str(target)))


def test_requirements_in_legacy_mode_with_a_user_module_named_like_the_stdlib(job, tmp_path):
    """requirements.txt is installed in legacy mode too; and pip, which runs in code/, does not
    import the user's csv.py in place of the standard library's."""
    target = tmp_path / "site"
    write_tree(job.code_dir, {"localpkg/" + k: v for k, v in
                              project("sm_test_localpkg", {"sm_test_localpkg.py": "ANSWER = 42\n"}).items()})
    job.add_script("csv.py", "raise ImportError('the user csv.py was imported')\n")
    job.add_script("requirements.txt", "./localpkg\n")
    job.add_script("train.py", "def train(**kwargs):\n    import sm_test_localpkg\n"
                               "    print('legacy train sees', sm_test_localpkg.ANSWER)\n")
    job.entry("train.py")
    result = job.run(timeout=120, PYTHONPATH=str(target), **offline_pip(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "mode: legacy" in result.stderr
    assert "-r requirements.txt" in result.stderr
    assert "legacy train sees 42" in result.stdout


def test_setup_py_makes_a_package_run_with_python_m(job, tmp_path):
    target = tmp_path / "site"
    entry = "import sys\nprint('spec=' + __spec__.name, 'name=' + __name__, 'args=' + ' '.join(sys.argv[1:]))\n"
    write_tree(job.code_dir, project("sm_test_trainer", {"train.py": entry}))
    job.add_script("setup.py", "from setuptools import setup\nsetup(name='sm-test-trainer', version='0.1')\n")
    job.entry("train.py", epochs=2)
    result = job.run(timeout=120, **offline_pip(tmp_path))
    assert result.returncode == 0, result.stderr
    # Offline first, built with this environment's setuptools (dependencies.py).
    assert "-m pip install --disable-pip-version-check --no-index --no-build-isolation ." in result.stderr
    assert "spec=train name=__main__ args=--epochs 2" in result.stdout
    assert any(n.startswith("sm_test_trainer-0.1.dist-info") for n in os.listdir(str(target)))


def test_setup_py_package_that_cannot_be_built_offline_fails_at_pip(job, tmp_path):
    """A project whose build backend the environment lacks: the offline try fails, and pip's
    configuration (no index) leaves nothing to fetch it from."""
    job.add_script("train.py", "print('should not run')\n")
    job.add_script("setup.py", "from setuptools import setup\nsetup(name='sm-test-plain', version='0.1')\n")
    job.add_script("pyproject.toml", '[build-system]\nrequires = ["sm-test-missing-backend"]\n'
                                     'build-backend = "sm_test_missing_backend"\n')
    job.entry("train.py")
    result = job.run(timeout=120, **offline_pip(tmp_path))
    assert result.returncode == 4
    assert result.failure_first_line.startswith("pip install failed: `")
    assert "pip install --disable-pip-version-check .` in {} exited with status".format(job.code_dir) \
        in result.failure_first_line
    assert "should not run" not in result.stdout
