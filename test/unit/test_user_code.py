"""Script vs legacy detection, safe extraction, and how the user's code is run (docs/contract.md section 4)."""

import io
import json
import os
import tarfile
import textwrap

import pytest

from mx_training_toolkit import archive as archive_mod, config, download, settings, user_code
from mx_training_toolkit.errors import CodeDownloadError, ConfigError

# ---- detect_legacy ----------------------------------------------------------------------------

GUARD = "if __name__ == '__main__':\n    main()\n"

LEGACY_CASES = [
    ("def train(hyperparameters, **kwargs):\n    return None\n", True),
    ("import mxnet as mx\n\ndef train(**kwargs):\n    pass\n\ndef save(model, model_dir):\n    pass\n", True),
    ("async def train():\n    pass\n", True),
    ("def train():\n    pass\n" + GUARD, False),
    ("def train():\n    pass\nif '__main__' == __name__:\n    train()\n", False),  # reversed operands
    ('def train():\n    pass\nif __name__ == "__main__":\n    train()\n', False),
    ("def main():\n    pass\n" + GUARD, False),
    ("print('just a script')\n", False),
    ("", False),
    # train() that is not at module level does not count
    ("class Trainer:\n    def train(self):\n        pass\n", False),
    ("def outer():\n    def train():\n        pass\n", False),
    ("if True:\n    def train():\n        pass\n", False),
    ("train = lambda: None\n", False),
    ("from somewhere import train\n", False),
    # any comparison of __name__ with '__main__', in any form, at any depth, means script mode: a script
    # with a train(epochs=1) helper must never be imported and its main block skipped
    ("def train():\n    pass\nif __name__ != '__main__':\n    pass\n", False),
    ("def train():\n    pass\ndef f():\n    if __name__ == '__main__':\n        pass\n", False),
    ("def train(epochs=1):\n    pass\nif __name__ == '__main__' and True:\n    train(3)\n", False),
    ("def train(epochs=1):\n    pass\ntry:\n    if __name__ == '__main__':\n        train(3)\n"
     "except KeyboardInterrupt:\n    pass\n", False),
    ("def train(epochs=1):\n    pass\nif __name__ in ('__main__',):\n    train(3)\n", False),
    ("def train(epochs=1):\n    pass\nif __name__ in {'__main__', 'x'}:\n    train(3)\n", False),
    ("def train(epochs=1):\n    pass\nmain = __name__ == '__main__'\nif main:\n    train(3)\n", False),
    # no comparison of __name__ with '__main__'
    ("def train():\n    pass\nif __name__ == 'main':\n    pass\n", True),
    ("def train():\n    pass\nif name == '__main__':\n    pass\n", True),
    ("def train():\n    pass\nprint('__main__', __name__)\n", True),
    # a file that does not parse runs as a script, so Python reports the error itself
    ("def train(:\n    pass\n", False),
    ("def train():\n  pass\n   oops\n", False),
    ("def train():\n    pass\n\x00\n", False),
    ("x = " + "(" * 300 + ")" * 300 + "\ndef train():\n    pass\n", False),
]


@pytest.mark.parametrize("source, legacy", LEGACY_CASES, ids=[str(i) for i in range(len(LEGACY_CASES))])
def test_detect_legacy(source, legacy):
    got, reason = user_code.detect_legacy(source, "entry.py")
    assert got is legacy
    assert "entry.py" in reason


def test_the_reason_names_the_line_of_the_comparison():
    source = "def train(epochs=1):\n    pass\n\nif __name__ in ('__main__',):\n    train(3)\n"
    assert user_code.detect_legacy(source, "entry.py") == (False, "entry.py compares __name__ with '__main__' (line 4)")


def test_detect_legacy_accepts_bytes():
    assert user_code.detect_legacy(b"def train():\n    pass\n")[0] is True


# ---- safe tar extraction ----------------------------------------------------------------------


def f(name, data=b"x", mode=0o644):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def d(name):
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, None


def sym(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info, None


def hard(name, target):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.LNKTYPE, target
    return info, None


def special(name, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, None


def make_tar(path, entries, mode="w:gz"):
    with tarfile.open(path, mode) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.fixture
def area(tmp_path):
    """``tmp_path/outside`` (where escapes would land), ``tmp_path/dest`` (empty) and an archive path."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "dest").mkdir()
    return tmp_path


def tree(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = "-> " + os.readlink(p)
            elif os.path.isdir(p):
                out[rel] = "dir"
            else:
                with open(p, "rb") as fh:
                    out[rel] = fh.read()
    return out


SAFE = [
    ("plain", [f("train.py", b"print(1)"), d("pkg"), f("pkg/__init__.py", b"")],
     {"train.py": b"print(1)", "pkg": "dir", "pkg/__init__.py": b""}),
    ("dot-prefixed, as `tar -C dir .` writes", [d("./"), f("./train.py", b"a"), d("./sub/"), f("./sub/m.py", b"b")],
     {"train.py": b"a", "sub": "dir", "sub/m.py": b"b"}),
    ("parents created", [f("a/b/c.py", b"c")], {"a": "dir", "a/b": "dir", "a/b/c.py": b"c"}),
    ("symlink inside the tree", [f("real.py", b"r"), sym("alias.py", "real.py")],
     {"real.py": b"r", "alias.py": "-> real.py"}),
    ("symlink up but still inside", [f("top.py", b"t"), d("sub"), sym("sub/l.py", "../top.py")],
     {"top.py": b"t", "sub": "dir", "sub/l.py": "-> ../top.py"}),
    ("symlink to a directory inside", [d("data"), f("data/x", b"1"), sym("d", "data")],
     {"data": "dir", "data/x": b"1", "d": "-> data"}),
    ("symlink to itself's dir", [sym("here", ".")], {"here": "-> ."}),
    ("dangling symlink inside", [sym("later", "not/there")], {"later": "-> not/there"}),
    ("hard link to an earlier file", [f("a.py", b"same"), hard("b.py", "a.py")], {"a.py": b"same", "b.py": b"same"}),
    ("hard link with ./ prefix", [f("./a.py", b"s"), hard("./c.py", "./a.py")], {"a.py": b"s", "c.py": b"s"}),
    ("later member of the same name wins", [f("x.py", b"1"), f("x.py", b"2")], {"x.py": b"2"}),
]


@pytest.mark.parametrize("label, entries, expected", SAFE, ids=[c[0] for c in SAFE])
def test_safe_archives_extract(area, label, entries, expected):
    archive = make_tar(str(area / "code.tar.gz"), entries)
    archive_mod.extract_tarball(archive, str(area / "dest"))
    assert tree(str(area / "dest")) == expected
    assert os.listdir(str(area / "outside")) == []


def test_extraction_keeps_the_executable_bit_only(area):
    archive = make_tar(str(area / "c.tar"), [f("run.sh", b"#!/bin/sh\n", 0o4777), f("m.py", b"", 0o666)], "w")
    archive_mod.extract_tarball(archive, str(area / "dest"))
    assert os.stat(str(area / "dest" / "run.sh")).st_mode & 0o7777 == 0o755
    assert os.stat(str(area / "dest" / "m.py")).st_mode & 0o7777 == 0o644


UNSAFE = [
    ("absolute path", [f("/tmp/evil.py")], "absolute path"),
    ("dot-dot", [f("../evil")], "'..'"),
    ("dot-dot in the middle", [d("a"), f("a/../../evil")], "'..'"),
    ("symlink absolute", [sym("l", "/etc/passwd")], "points out of the code"),
    ("symlink up and out", [sym("l", "../outside")], "points out of the code"),
    ("symlink out from a subdir", [d("sub"), sym("sub/l", "../../outside")], "points out of the code"),
    ("symlink chain out", [sym("a", "."), sym("b", "a/..")], "points out of the code"),
    ("symlink chain through another link", [sym("up", ".."), sym("l", "up/x")], "points out of the code"),
    ("symlink chain declared later", [sym("l", "hop/../.."), d("x"), sym("hop", "x")], "points out of the code"),
    ("file below a symlink", [d("real"), sym("l", "real"), f("l/evil.py")], "below the symlink"),
    ("file below an escaping symlink", [sym("l", "../outside"), f("l/evil.py")], "points out of the code"),
    ("symlink loop", [sym("a", "b"), sym("b", "a"), sym("c", "a/x")], "link loop"),
    ("hard link absolute", [hard("h", "/etc/passwd")], "absolute path"),
    ("hard link up", [hard("h", "../outside/x")], "'..'"),
    ("hard link to a file not in the archive", [hard("h", "nowhere")], "hard link to a file outside"),
    ("hard link to a symlink", [sym("s", "x"), hard("h", "s")], "hard link to a file outside"),
    ("hard link to a later file", [hard("h", "a.py"), f("a.py")], "hard link to a file outside"),
    ("character device", [special("dev", tarfile.CHRTYPE)], "special file"),
    ("block device", [special("blk", tarfile.BLKTYPE)], "special file"),
    ("fifo", [special("fifo", tarfile.FIFOTYPE)], "special file"),
]


@pytest.mark.parametrize("label, entries, message", UNSAFE, ids=[c[0] for c in UNSAFE])
def test_unsafe_archives_are_refused_before_anything_is_written(area, label, entries, message):
    archive = make_tar(str(area / "code.tar.gz"), [f("train.py", b"ok")] + entries)
    with pytest.raises(CodeDownloadError, match="the code archive has .*" + message.replace("(", r"\(")) as info:
        archive_mod.extract_tarball(archive, str(area / "dest"))
    assert info.value.step == "code download"
    assert os.listdir(str(area / "dest")) == []
    assert os.listdir(str(area / "outside")) == []
    assert sorted(os.listdir(str(area))) == ["code.tar.gz", "dest", "outside"]


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not an archive at all", b"\x1f\x8b\x08\x00garbage-after-gzip-magic" * 3],
    ids=["empty", "text", "bad-gzip"],
)
def test_unreadable_archive(area, content):
    archive = area / "code.tar.gz"
    archive.write_bytes(content)
    with pytest.raises(CodeDownloadError, match="cannot read the code archive"):
        archive_mod.extract_tarball(str(archive), str(area / "dest"))


def test_truncated_archive(area):
    archive = make_tar(str(area / "full.tar.gz"), [f("big.bin", os.urandom(200000))])
    with open(archive, "rb") as fh:
        data = fh.read()
    (area / "cut.tar.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CodeDownloadError, match="cannot read the code archive"):
        archive_mod.extract_tarball(str(area / "cut.tar.gz"), str(area / "dest"))


# ---- fetch ------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://x/code.tar.gz", "https://example.com/c.tar.gz", "gs://b/k"])
def test_unsupported_url_scheme(tmp_path, url):
    with pytest.raises(CodeDownloadError, match="sagemaker_submit_directory .*unsupported URL scheme"):
        download.fetch(url, str(tmp_path / "staging"), settings.Settings())


@pytest.mark.parametrize("url", ["s3://", "s3://bucket-only", "s3://bucket/"])
def test_malformed_s3_url(tmp_path, url):
    pytest.importorskip("boto3")
    with pytest.raises(CodeDownloadError, match="is not an s3://bucket/key URL"):
        download.fetch(url, str(tmp_path / "staging"), settings.Settings())
    assert os.listdir(str(tmp_path)) == []


def test_missing_submit_directory(tmp_path):
    with pytest.raises(CodeDownloadError, match="does not exist"):
        download.fetch(str(tmp_path / "nope"), str(tmp_path / "staging"), settings.Settings())


# ---- describe ------------------------------------------------------------------------------

PY = "/usr/bin/python3"


def job(tmp_path, files, hps=None):
    base = tmp_path / "ml"
    (base / "input" / "config").mkdir(parents=True)
    (base / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hps or {}))
    for name, text in files.items():
        p = base / "code" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return config.load(str(base), {})


SCRIPT = "import sys\n" + GUARD.replace("main()", "print(sys.argv)")
LEGACY = "def train(**kwargs):\n    pass\n"

DESCRIBE = [
    ("script", {"t.py": SCRIPT}, {}, (PY, "t.py", "--lr", "0.1"), False, False, False),
    ("legacy", {"t.py": LEGACY}, {}, (PY, "-c", user_code.runner_bootstrap(user_code.LEGACY_RUNNER)),
     True, False, False),
    ("legacy forced off", {"t.py": LEGACY}, {"sagemaker_mxnet_legacy_mode": "false"},
     (PY, "t.py", "--lr", "0.1"), False, False, False),
    ("legacy forced on", {"t.py": SCRIPT}, {"sagemaker_mxnet_legacy_mode": "true"},
     (PY, "-c", user_code.runner_bootstrap(user_code.LEGACY_RUNNER)), True, False, False),
    ("requirements", {"t.py": SCRIPT, "requirements.txt": "six\n"}, {}, (PY, "t.py", "--lr", "0.1"),
     False, True, False),
    ("package", {"t.py": SCRIPT, "setup.py": ""}, {}, (PY, "-m", "t", "--lr", "0.1"), False, False, True),
    ("package submodule", {"pkg/t.py": SCRIPT, "setup.py": ""}, {}, (PY, "-m", "pkg.t", "--lr", "0.1"),
     False, False, True),
    ("shell", {"run.sh": "#!/bin/sh\n"}, {}, ("./run.sh", "--lr", "0.1"), False, False, False),
]


@pytest.mark.parametrize("label, files, hps, argv, legacy, requirements, package", DESCRIBE,
                         ids=[c[0] for c in DESCRIBE])
def test_describe(tmp_path, label, files, hps, argv, legacy, requirements, package):
    entry = next(n for n in files if n.endswith((".py", ".sh")) and n != "setup.py")
    cfg = job(tmp_path, files, {"sagemaker_program": json.dumps(entry), **hps})
    described = user_code.describe(cfg, ["--lr", "0.1"])
    assert described.argv(python=PY) == argv
    assert (described.legacy, described.requirements, described.is_package) == (legacy, requirements, package)


@pytest.mark.parametrize(
    "files, program, message",
    [
        ({"t.py": SCRIPT}, "other.py", "field 'sagemaker_program' names 'other.py', which is not in the code"),
        ({"sub/t.py": SCRIPT}, "sub", "field 'sagemaker_program' names 'sub', which is not in the code"),
        ({"run.sh": ""}, "run.sh", None),
    ],
)
def test_describe_errors(tmp_path, files, program, message):
    hps = {"sagemaker_program": json.dumps(program)}
    if message is None:  # legacy mode asked for a non-Python entry point
        hps["sagemaker_mxnet_legacy_mode"] = "true"
        message = "field 'sagemaker_mxnet_legacy_mode' is true but 'run.sh' is not a Python file"
    cfg = job(tmp_path, files, hps)
    with pytest.raises(ConfigError) as info:
        user_code.describe(cfg, [])
    assert str(info.value).startswith("hyperparameters.json: ")
    assert message in str(info.value)


@pytest.mark.parametrize("kind,record,readable", [
    ("script", True, ("py", "-m", "mx_training_toolkit.runner", "train.py", "--a", "1")),
    ("module", True, ("py", "-m", "mx_training_toolkit.runner", "--module", "train.py", "--a", "1")),
    ("legacy", False, ("py", "-m", "mx_training_toolkit.legacy")),
    ("script", False, ("py", "train.py", "--a", "1")),
])
def test_the_command_the_log_shows_names_the_runner_not_its_bootstrap(kind, record, readable):
    described = user_code.UserCode(kind, "train.py", ("--a", "1"))
    assert described.argv("py", record_status=record, readable=True) == readable
    runs_a_runner = record or kind == "legacy"
    assert (described.argv("py", record_status=record)[1] == "-c") == runs_a_runner
