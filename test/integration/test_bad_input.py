"""A corpus of malformed jobs run through the real ``train`` command.

Every case must: exit non-zero; write a failure file whose first line says which step failed and
names the file and field (or the step); print no traceback of the launcher's own; and leave
``model/`` and a pre-existing ``code/`` exactly as they were.
"""

import io
import json
import os
import tarfile

import pytest

from .support import snapshot

SCRIPT = "import sys\nprint('the user script ran', sys.argv)\n"
HELPER = "VALUE = 1\n"
TRACEBACK = "Traceback (most recent call last)"

EXIT_CONFIG, EXIT_DOWNLOAD, EXIT_PIP = 2, 3, 4


# ---- building blocks for the cases ------------------------------------------------------------


def raw(name, content):
    """Overwrite one config file with exactly these bytes (or text)."""
    def apply(job, tmp):
        data = content.encode("utf-8") if isinstance(content, str) else content
        with open(job.path("input", "config", name), "wb") as f:
            f.write(data)
    return apply


def hps(**values):
    """Set hyperparameters to these raw (already JSON-encoded or not) strings; None removes one."""
    def apply(job, tmp):
        for key, value in values.items():
            if value is None:
                job.hyperparameters.pop(key, None)
            else:
                job.hyperparameters[key] = value
        job.write_config()
    return apply


def resource(**config):
    def apply(job, tmp):
        job.resource_config = config
        job.write_config()
    return apply


def data_config(config, make_dirs=()):
    def apply(job, tmp):
        for name in make_dirs:
            os.makedirs(job.path("input", "data", name), exist_ok=True)
        job.input_data_config = config
        job.write_config()
    return apply


def code_file(name, text):
    def apply(job, tmp):
        job.add_script(name, text)
    return apply


def tar_info(name, kind=tarfile.REGTYPE, data=b"", linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname, info.mode = kind, len(data), linkname, 0o644
    return info, data


def tarball(*members, content=None):
    """Submit a local .tar.gz holding ``train.py`` plus ``members`` (or exactly ``content`` bytes)."""
    def apply(job, tmp):
        path = os.path.join(str(tmp), "sourcedir.tar.gz")
        if content is not None:
            with open(path, "wb") as f:
                f.write(content)
        else:
            with tarfile.open(path, "w:gz") as tar:
                for info, data in (tar_info("train.py", data=SCRIPT.encode()),) + members:
                    tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
        job.hyperparameters["sagemaker_submit_directory"] = json.dumps(path)
        job.write_config()
    return apply


def submit(url):
    return hps(sagemaker_submit_directory=json.dumps(url))


def both(*steps):
    def apply(job, tmp):
        for step in steps:
            step(job, tmp)
    return apply


def env(**extra):
    """Not a change to the job: extra environment for ``train`` (see run_case)."""
    return extra


DEEP = "[" * 50000

# (id, change, exit status, first line prefix, words the first line must contain, extra env)
CASES = [
    # --- the three config files: unreadable, not an object, not UTF-8
    ("hps-invalid-json", raw("hyperparameters.json", '{"sagemaker_program": "train.py",'), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "invalid JSON"], {}),
    ("resource-invalid-json", raw("resourceconfig.json", "{'current_host': 'algo-1'}"), EXIT_CONFIG,
     "Configuration error: ", ["resourceconfig.json", "invalid JSON"], {}),
    ("data-invalid-json", raw("inputdataconfig.json", '{"train": {"TrainingInputMode": "File"'), EXIT_CONFIG,
     "Configuration error: ", ["inputdataconfig.json", "invalid JSON"], {}),
    ("hps-empty-file", raw("hyperparameters.json", ""), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "invalid JSON"], {}),
    ("hps-nested-too-deep", raw("hyperparameters.json", DEEP), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "nested too deeply"], {}),
    ("hps-array", raw("hyperparameters.json", '["sagemaker_program", "train.py"]'), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "expected a JSON object", "list"], {}),
    ("resource-array", raw("resourceconfig.json", '["algo-1"]'), EXIT_CONFIG,
     "Configuration error: ", ["resourceconfig.json", "expected a JSON object"], {}),
    ("data-string", raw("inputdataconfig.json", '"train"'), EXIT_CONFIG,
     "Configuration error: ", ["inputdataconfig.json", "expected a JSON object"], {}),
    ("hps-not-utf8", raw("hyperparameters.json", b'{"sagemaker_program": "\xe9t\xe9.py"}'), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "not valid UTF-8"], {}),
    ("resource-not-utf8", raw("resourceconfig.json", b"\xff\xfe{\x00}\x00"), EXIT_CONFIG,
     "Configuration error: ", ["resourceconfig.json", "not valid UTF-8"], {}),
    # --- wrong types and values
    ("hosts-not-a-list", resource(current_host="algo-1", hosts="algo-1"), EXIT_CONFIG,
     "Configuration error: ", ["resourceconfig.json", "'hosts'", "list"], {}),
    ("current-host-number", resource(current_host=1, hosts=["algo-1"]), EXIT_CONFIG,
     "Configuration error: ", ["resourceconfig.json", "'current_host'", "string"], {}),
    ("current-host-not-in-hosts", resource(current_host="algo-9", hosts=["algo-1", "algo-2"]), EXIT_CONFIG,
     "Configuration error: ", ["resourceconfig.json", "current_host 'algo-9' is not in hosts"], {}),
    ("hosts-empty", resource(current_host="algo-1", hosts=[]), EXIT_CONFIG,
     "Configuration error: ", ["resourceconfig.json", "'hosts' is empty"], {}),
    ("hosts-duplicated", resource(current_host="algo-1", hosts=["algo-1", "algo-2", "algo-1"]), EXIT_CONFIG,
     "Configuration error: ", ["resourceconfig.json", "'hosts' lists a host twice"], {}),
    ("hosts-huge-value", resource(current_host="algo-1", hosts="algo-1," * 2000), EXIT_CONFIG,
     "Configuration error: ", ["resourceconfig.json", "'hosts'", " [cut]"], {}),
    ("current-host-missing", resource(hosts=["algo-1"]), EXIT_CONFIG,
     "Configuration error: ", ["resourceconfig.json", "'current_host' is missing"], {}),
    ("log-level-abc", hps(sagemaker_container_log_level='"abc"'), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "'sagemaker_container_log_level'", "'abc'"], {}),
    ("ps-port-out-of-range", hps(_ps_port="99999"), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "'_ps_port'", "99999"], {}),
    ("ps-enabled-maybe", hps(sagemaker_parameter_server_enabled='"maybe"'), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "'sagemaker_parameter_server_enabled'", "true or false"], {}),
    ("hp-name-with-equals", hps(**{"a=b": "1"}), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "'a=b'"], {}),
    ("hp-value-with-nul", hps(note='"a\\u0000b"'), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "'note'", "NUL"], {}),
    ("hp-value-lone-surrogate", hps(note='"\\udc80"'), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "'note'", "surrogate"], {}),
    ("host-addresses-env-invalid", lambda job, tmp: None, EXIT_CONFIG,
     "Configuration error: ", ["MX_TRAINING_HOST_ADDRESSES", "invalid JSON"], {"MX_TRAINING_HOST_ADDRESSES": "{x"}),
    # --- the entry point
    ("entry-point-missing", hps(sagemaker_program=None), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "'sagemaker_program'", "missing"], {}),
    ("entry-point-not-in-code", hps(sagemaker_program='"other.py"'), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "'sagemaker_program'", "'other.py'", "not in the code"], {}),
    ("entry-point-absolute", hps(sagemaker_program='"/etc/passwd"'), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "'sagemaker_program'", "'/etc/passwd'"], {}),
    ("entry-point-dot-dot", hps(sagemaker_program='"../train.py"'), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "'sagemaker_program'", "'../train.py'"], {}),
    ("entry-point-a-directory", both(code_file("pkg/__init__.py", ""), hps(sagemaker_program='"pkg"')),
     EXIT_CONFIG, "Configuration error: ", ["hyperparameters.json", "'sagemaker_program'", "'pkg'"], {}),
    ("entry-point-not-a-string", hps(sagemaker_program="[1]"), EXIT_CONFIG,
     "Configuration error: ", ["hyperparameters.json", "'sagemaker_program'"], {}),
    # --- channels
    ("channel-directory-missing", data_config({"train": {"TrainingInputMode": "File"}}), EXIT_CONFIG,
     "Configuration error: ", ["inputdataconfig.json", "channel 'train'", "no data directory"], {}),
    ("channel-spec-a-string", data_config({"train": "File"}, make_dirs=["train"]), EXIT_CONFIG,
     "Configuration error: ", ["inputdataconfig.json", "channel 'train'", "JSON object"], {}),
    ("channel-mode-a-number", data_config({"train": {"TrainingInputMode": 1}}, make_dirs=["train"]), EXIT_CONFIG,
     "Configuration error: ", ["inputdataconfig.json", "'TrainingInputMode'", "channel 'train'"], {}),
    ("channel-name-with-slash", data_config({"a/b": {}}), EXIT_CONFIG,
     "Configuration error: ", ["inputdataconfig.json", "'a/b'", "channel name"], {}),
    # --- getting the code
    ("tarball-garbage", tarball(content=b"\x1f\x8b\x08\x00 this is not gzip data at all " * 20), EXIT_DOWNLOAD,
     "Code download failed: ", ["cannot read the code archive", "sourcedir.tar.gz"], {}),
    ("tarball-not-an-archive", tarball(content=b"plain text, not a tarball\n"), EXIT_DOWNLOAD,
     "Code download failed: ", ["cannot read the code archive"], {}),
    ("tarball-dot-dot", tarball(tar_info("../evil.py", data=b"x")), EXIT_DOWNLOAD,
     "Code download failed: ", ["'..'", "'../evil.py'"], {}),
    ("tarball-absolute-path", tarball(tar_info("/tmp/evil-from-tarball.py", data=b"x")), EXIT_DOWNLOAD,
     "Code download failed: ", ["absolute path", "/tmp/evil-from-tarball.py"], {}),
    ("tarball-symlink-escapes", tarball(tar_info("data", tarfile.SYMTYPE, linkname="../../..")), EXIT_DOWNLOAD,
     "Code download failed: ", ["link that points out of the code", "'data'"], {}),
    ("tarball-symlink-absolute", tarball(tar_info("etc", tarfile.SYMTYPE, linkname="/etc")), EXIT_DOWNLOAD,
     "Code download failed: ", ["link that points out of the code", "'/etc'"], {}),
    ("tarball-write-through-symlink",
     tarball(tar_info("d", tarfile.DIRTYPE), tar_info("l", tarfile.SYMTYPE, linkname="d"),
             tar_info("l/x.py", data=b"x")), EXIT_DOWNLOAD,
     "Code download failed: ", ["below the symlink", "'l/x.py'"], {}),
    ("tarball-hardlink-escapes", tarball(tar_info("h", tarfile.LNKTYPE, linkname="/etc/passwd")), EXIT_DOWNLOAD,
     "Code download failed: ", ["absolute path", "/etc/passwd"], {}),
    ("tarball-device-file", tarball(tar_info("null", tarfile.CHRTYPE)), EXIT_DOWNLOAD,
     "Code download failed: ", ["special file", "'null'"], {}),
    ("tarball-empty", lambda job, tmp: _empty_tarball(job, tmp), EXIT_DOWNLOAD,
     "Code download failed: ", ["sagemaker_submit_directory", "holds no files"], {}),
    ("tarball-file-where-code-has-a-dir",
     both(code_file("pkg/mod.py", "X = 1\n"), tarball(tar_info("pkg", data=b"not a dir"))), EXIT_DOWNLOAD,
     "Code download failed: ", ["cannot be copied over", "'pkg'"], {}),
    ("submit-dir-missing", submit("/nonexistent/source/dir"), EXIT_DOWNLOAD,
     "Code download failed: ", ["sagemaker_submit_directory", "'/nonexistent/source/dir'", "does not exist"], {}),
    ("submit-file-url-missing", submit("file:///nonexistent/sourcedir.tar.gz"), EXIT_DOWNLOAD,
     "Code download failed: ", ["sagemaker_submit_directory", "does not exist"], {}),
    ("submit-ftp-url", submit("ftp://x/sourcedir.tar.gz"), EXIT_DOWNLOAD,
     "Code download failed: ", ["sagemaker_submit_directory", "'ftp://x/sourcedir.tar.gz'", "unsupported URL scheme"],
     {}),
    ("submit-s3-no-key", submit("s3://bucket-only"), EXIT_DOWNLOAD,
     "Code download failed: ", ["'s3://bucket-only'", "not an s3://bucket/key URL"], {}),
    # --- pip install and the user script
    ("pip-requirement-missing-path", code_file("requirements.txt", "./nope\n"), EXIT_PIP,
     "pip install failed: ", ["-r requirements.txt", "exited with status"],
     {"PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull}),
    ("script-syntax-error", code_file("train.py", "def broken(:\n    pass\n"), 1,
     "User script failed: ", ["train.py", "exited with status 1"], {}),
]


def _empty_tarball(job, tmp):
    path = os.path.join(str(tmp), "empty.tar.gz")
    with tarfile.open(path, "w:gz"):
        pass
    job.hyperparameters["sagemaker_submit_directory"] = json.dumps(path)
    job.write_config()


USER_SCRIPT_CASES = {"script-syntax-error"}
# words the failure file must hold below its first line (the stderr tail of the failed step)
DETAIL = {"pip-requirement-missing-path": "nope", "script-syntax-error": "SyntaxError"}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(job, tmp_path, case):
    name, change, status, prefix, words, extra_env = case
    job.add_script("train.py", SCRIPT)
    job.add_script("helper.py", HELPER)
    job.entry("train.py", epochs=3)
    os.makedirs(job.path("model"))
    with open(job.path("model", "keep.bin"), "wb") as f:
        f.write(b"an earlier artifact")
    job.write_config()
    change(job, tmp_path)
    model_before, code_before = snapshot(job.path("model")), snapshot(job.code_dir)

    result = job.run(timeout=60, write=False, **extra_env)

    assert result.returncode == status, result.stderr
    assert not result.succeeded
    first = result.failure_first_line
    assert first is not None, result.stderr
    assert first.startswith(prefix), first
    for word in words:
        assert word in first, (word, first)
    assert len(first) <= 1024
    if name in DETAIL:
        assert DETAIL[name] in result.failure.split("\n", 1)[1], result.failure
    if name in USER_SCRIPT_CASES:
        assert "Internal error" not in result.failure
    else:
        assert TRACEBACK not in result.stderr, result.stderr
        assert "the user script ran" not in result.stdout
    assert snapshot(job.path("model")) == model_before
    assert snapshot(job.code_dir) == code_before
    assert not [n for n in os.listdir(job.base) if n.startswith(".code-download")]
    assert not os.path.exists("/tmp/evil-from-tarball.py")


def test_syntax_error_text_is_in_the_failure_file(job):
    job.add_script("train.py", "x = 1\ndef broken(:\n    pass\n")
    job.entry("train.py")
    result = job.run(timeout=60)
    assert result.returncode == 1
    assert result.failure_first_line == \
        "User script failed: train.py exited with status 1: SyntaxError: invalid syntax (train.py, line 2)"
    assert "SyntaxError" in result.failure
    assert "def broken(:" in result.failure
    assert 'train.py", line 2' in result.failure


def test_unsafe_tarball_writes_nothing_outside(job, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    tarball(tar_info("up", tarfile.SYMTYPE, linkname="."),
            tar_info("out", tarfile.SYMTYPE, linkname="up/../../victim"))(job, tmp_path)
    job.add_script("train.py", SCRIPT)
    job.entry("train.py")
    job.hyperparameters["sagemaker_submit_directory"] = json.dumps(str(tmp_path / "sourcedir.tar.gz"))
    result = job.run(timeout=60)
    assert result.returncode == EXIT_DOWNLOAD
    assert "link that points out of the code" in result.failure_first_line
    assert list(victim.iterdir()) == []
    assert not os.path.lexists(os.path.join(job.code_dir, "out"))
