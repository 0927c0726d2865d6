"""The user's dependencies through the real ``train``: wheels shipped in code/wheelhouse/, needs the
environment already meets, an index that cannot be reached (a refused port, a name that does not
resolve, a server that accepts and never answers: all on loopback or .invalid), an index with
credentials, pip's own configuration, and a CodeArtifact repository (a local fake of its two calls).
pip runs with a clean configuration: no PIP_* of this machine, no pip.conf."""

import os
import subprocess
import time

import pytest

from fake_index import CodeArtifactServer, IndexServer, SilentServer, make_wheel

from .support import TRAIN, free_port

EXIT_PIP = 4
PACKAGE = "mxtt-dep-probe"
SCRIPT = "import mxtt_dep_probe\nprint('probe says', mxtt_dep_probe.VALUE)\n"
ARN = "arn:aws:codeartifact:eu-west-1:123456789012:repository/my-domain/my-repo"
TOKEN = "ca-token-0123456789abcdef"


def run_train(job, timeout=120, **settings):
    """``train`` on ``job`` with none of this machine's pip settings, plus ``settings`` -> (Result, seconds)."""
    from .support import Result

    job.write_config()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "AWS_", "CA_")) and k != "PYTHONPATH"}
    env.update(SAGEMAKER_BASE_DIR=job.base, PYTHONUNBUFFERED="1", PIP_CONFIG_FILE=os.devnull)
    env.update(settings)
    began = time.monotonic()
    proc = subprocess.run(TRAIN, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    seconds = time.monotonic() - began
    return Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"),
                  job.base), seconds


def into(tmp_path):
    """pip installs into tmp_path/site (never the test environment), and the script imports from there."""
    site = tmp_path / "site"
    return {"PIP_TARGET": str(site), "PYTHONPATH": str(site)}


@pytest.fixture
def wheels(tmp_path):
    directory = tmp_path / "wheels"
    directory.mkdir()
    make_wheel(directory, PACKAGE, "1.0", "VALUE = 'hello from the wheel'\n")
    return directory


def test_wheels_in_code_wheelhouse_install_with_no_index_at_all(job, tmp_path, wheels):
    """requirements.txt and a setup.py depending on it: both from code/wheelhouse/ only, the
    package built without isolation with the environment's setuptools, the index never asked."""
    os.makedirs(os.path.join(job.code_dir, "wheelhouse"))
    make_wheel(os.path.join(job.code_dir, "wheelhouse"), PACKAGE, "1.0", "VALUE = 'hello from the wheel'\n")
    job.add_script("requirements.txt", PACKAGE + "==1.0\n")
    job.add_script("setup.py", "from setuptools import setup\nsetup(name='mxtt-dep-user', version='0.1', "
                               "py_modules=['train'], install_requires=['{}'])\n".format(PACKAGE))
    job.add_script("train.py", SCRIPT)
    job.entry("train.py")
    with SilentServer() as index:
        result, _ = run_train(job, PIP_INDEX_URL="http://127.0.0.1:{}/simple/".format(index.port), **into(tmp_path))
        assert index.connections == []
    assert result.returncode == 0, result.stderr
    assert "probe says hello from the wheel" in result.stdout
    wheelhouse = os.path.join(job.code_dir, "wheelhouse")
    assert "--no-index --find-links {} -r requirements.txt".format(wheelhouse) in result.stderr
    assert "--no-index --find-links {} --no-build-isolation .".format(wheelhouse) in result.stderr
    assert any(n.startswith("mxtt_dep_user-0.1.dist-info") for n in os.listdir(str(tmp_path / "site")))


def test_a_missing_wheel_in_the_wheelhouse_fails_without_asking_the_index(job, tmp_path):
    os.makedirs(os.path.join(job.code_dir, "wheelhouse"))
    job.add_script("requirements.txt", PACKAGE + "==1.0\n")
    job.add_script("train.py", SCRIPT)
    job.entry("train.py")
    with SilentServer() as index:
        result, _ = run_train(job, PIP_INDEX_URL="http://127.0.0.1:{}/simple/".format(index.port), **into(tmp_path))
        assert index.connections == []
    assert result.returncode == EXIT_PIP, result.stderr
    assert result.failure_first_line == (
        "pip install failed: `pip install --disable-pip-version-check --no-index --find-links {wh} -r "
        "requirements.txt` in {code} exited with status 1".format(wh=os.path.join(job.code_dir, "wheelhouse"),
                                                                  code=job.code_dir))


def test_needs_the_environment_meets_never_touch_the_index(job):
    """An isolated job whose requirements the image already has: the unreachable index is never asked."""
    job.add_script("requirements.txt", "six\npip\n")
    job.add_script("train.py", "import six\nprint('six', six.__version__)\n")
    job.entry("train.py")
    with SilentServer() as index:
        result, seconds = run_train(job, PIP_INDEX_URL="http://127.0.0.1:{}/simple/".format(index.port))
        assert index.connections == []
    assert result.returncode == 0, result.stderr
    assert "--no-index -r requirements.txt" in result.stderr
    print("met without the index: %.1f s" % seconds)


def _unreachable(case, stack):
    if case == "refused":
        return "127.0.0.1:{}".format(free_port()), "connection refused"
    if case == "unresolvable":
        return "mxtt-no-such-index.invalid", "the name mxtt-no-such-index.invalid does not resolve"
    silent = stack.enter_context(SilentServer())
    return "127.0.0.1:{}".format(silent.port), "no answer within 10 s"


@pytest.mark.parametrize("case", ["refused", "unresolvable", "silent"])
def test_an_unreachable_index_fails_the_job_within_30_s_saying_how_to_ship_wheels(job, tmp_path, case):
    import contextlib

    job.add_script("requirements.txt", PACKAGE + "==1.0\n")
    job.add_script("train.py", "print('should not run')\n")
    job.entry("train.py")
    with contextlib.ExitStack() as stack:
        where, reason = _unreachable(case, stack)
        url = "http://mxtt-user:hunter2-index-pw@{}/simple/".format(where)
        result, seconds = run_train(job, PIP_INDEX_URL=url, **into(tmp_path))
    print("%s: failed after %.1f s" % (case, seconds))
    assert result.returncode == EXIT_PIP, result.stderr
    assert result.failure_first_line == (
        "pip install failed: the package index http://mxtt-user:****@{}/simple/ (PIP_INDEX_URL) could not be "
        "reached ({}); requirements.txt needs packages the image does not have. To install without an index, "
        "ship their wheels in code/wheelhouse/ (pip download -r requirements.txt -d wheelhouse for this image's "
        "Python and platform)".format(where, reason))
    assert seconds < 30
    assert "should not run" not in result.stdout
    for text in (result.failure, result.stdout, result.stderr):
        assert "hunter2-index-pw" not in text


def test_an_index_with_credentials_installs_and_its_password_is_never_written(job, tmp_path, wheels):
    job.add_script("requirements.txt", PACKAGE + "==1.0\n")
    job.add_script("train.py", SCRIPT)
    job.entry("train.py")
    with IndexServer(wheels, user="mxtt-user", password="hunter2-index-pw") as index:
        result, _ = run_train(job, PIP_INDEX_URL=index.url("mxtt-user:hunter2-index-pw"), **into(tmp_path))
        assert index.requests and index.requests[-1][0] == "GET"
    assert result.returncode == 0, result.stderr
    assert "probe says hello from the wheel" in result.stdout
    assert "from {} (PIP_INDEX_URL)".format(index.url("mxtt-user:****")) in result.stderr
    assert "hunter2-index-pw" not in result.stdout + result.stderr


def test_the_index_of_pips_own_configuration_is_used_and_named(job, tmp_path, wheels):
    with IndexServer(wheels) as index:
        conf = tmp_path / "pip.conf"
        conf.write_text("[global]\nindex-url = {}\n".format(index.url()))
        job.add_script("requirements.txt", PACKAGE + "==1.0\n")
        job.add_script("train.py", SCRIPT)
        job.entry("train.py")
        result, _ = run_train(job, **{**into(tmp_path), "PIP_CONFIG_FILE": str(conf)})
    assert result.returncode == 0, result.stderr
    assert "probe says hello from the wheel" in result.stdout
    assert "from {} (pip's configuration: global.index-url)".format(index.url()) in result.stderr


def _codeartifact_env(server, tmp_path):
    return {**into(tmp_path), "CA_REPOSITORY_ARN": ARN, "AWS_ENDPOINT_URL_CODEARTIFACT": server.url,
            "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "fake-secret", "AWS_EC2_METADATA_DISABLED": "true",
            # CA_REPOSITORY_ARN wins over the environment's own index, as in the reference.
            "PIP_INDEX_URL": "http://127.0.0.1:{}/simple/".format(free_port())}


def test_ca_repository_arn_installs_from_the_codeartifact_repository(job, tmp_path, wheels):
    job.add_script("requirements.txt", PACKAGE + "==1.0\n")
    job.add_script("train.py", SCRIPT)
    job.entry("train.py")
    with IndexServer(wheels, prefix="pypi/my-repo", user="aws", password=TOKEN) as index:
        endpoint = "http://127.0.0.1:{}/pypi/my-repo/".format(index.port)
        with CodeArtifactServer(TOKEN, endpoint) as codeartifact:
            result, _ = run_train(job, **_codeartifact_env(codeartifact, tmp_path))
        assert codeartifact.calls == [
            ("POST /v1/authorization-token", {"domain": "my-domain", "domain-owner": "123456789012"}),
            ("GET /v1/repository/endpoint", {"domain": "my-domain", "domain-owner": "123456789012",
                                             "repository": "my-repo", "format": "pypi"})]
        assert any(path.startswith("/pypi/my-repo/simple/") for _, path, _ in index.requests)
    assert result.returncode == 0, result.stderr
    assert "probe says hello from the wheel" in result.stdout
    assert "from http://aws:****@127.0.0.1:{}/pypi/my-repo/simple/ (CA_REPOSITORY_ARN={})".format(
        index.port, ARN) in result.stderr
    assert TOKEN not in result.stdout + result.stderr


def test_a_codeartifact_error_fails_the_job_configuring_pip(job, tmp_path):
    job.add_script("requirements.txt", PACKAGE + "==1.0\n")
    job.add_script("train.py", "print('should not run')\n")
    job.entry("train.py")
    with CodeArtifactServer(TOKEN, "unused", error="AccessDeniedException") as codeartifact:
        result, _ = run_train(job, **_codeartifact_env(codeartifact, tmp_path))
    assert result.returncode == EXIT_PIP, result.stderr
    assert result.failure_first_line == (
        "pip install failed: failed to configure pip to use codeartifact (CA_REPOSITORY_ARN={}): "
        "AccessDeniedException: An error occurred (AccessDeniedException) when calling the GetAuthorizationToken "
        "operation: fake denial".format(ARN))
