"""The failure file's first 1024 characters, which the platform shows as the job's FailureReason
(docs/contract.md section 6): line 1 names the error, masked first and then cut; the stderr tail
and the tail relayed to the first host are masked before their windows and cuts."""

import json
import os
import subprocess

import pytest

from .support import MX_TRAIN, read

SHOWN = 1024  # characters of the failure file the platform shows
TOKEN = "t0k3n-SECRET-0123456789abcdef"
CUT = " [cut]"


def _syntax_error(source):
    try:
        compile(source, "train.py", "exec")
    except SyntaxError as e:
        return "SyntaxError: {}".format(e)
    raise AssertionError("no syntax error in {!r}".format(source))


DEEP = ("def down(n):\n"
        "    if n == 0:\n"
        "        raise ValueError('bad value 42 at the bottom')\n"
        "    down(n - 1)\n"
        "down(40)\n")
CHAINED = ("try:\n"
           "    {}['missing']\n"
           "except KeyError as e:\n"
           "    raise RuntimeError('loading the data failed') from e\n")
LONG = "raise ValueError('x' * 2048)\n"
STRADDLE = "import sys\nraise ValueError('v' * 730 + ' ' + sys.argv[2] + ' end')\n"
SYNTAX = "print('start'\nx = (\n"
LEGACY = "def train(hyperparameters, num_gpus):\n    raise ValueError('learning rate 5 is too high')\n"
PREFIX = "User script failed: train.py exited with status 1: "

CASES = [
    # name, file, source, exit status, line 1
    ("40-frame traceback", "train.py", DEEP, 1, PREFIX + "ValueError: bad value 42 at the bottom"),
    ("2 KB message", "train.py", LONG, 1, (PREFIX + "ValueError: " + "x" * 2048)[:800 - len(CUT)] + CUT),
    ("chained exception", "train.py", CHAINED, 1, PREFIX + "RuntimeError: loading the data failed"),
    ("sys.exit with a message", "train.py", "import sys\nsys.exit('no data in the train channel')\n", 1,
     PREFIX + "SystemExit: no data in the train channel"),
    ("sys.exit with a status", "train.py", "import sys\nprint('bye', file=sys.stderr)\nsys.exit(3)\n", 3,
     "User script failed: train.py exited with status 3"),
    ("syntax error at start-up", "train.py", SYNTAX, 1, PREFIX + _syntax_error(SYNTAX)),
    ("import error at start-up", "train.py", "import no_such_module_here\n", 1,
     PREFIX + "ModuleNotFoundError: No module named 'no_such_module_here'"),
    ("shell script", "train.sh", "#!/bin/sh\necho 'fatal: no data' >&2\necho >&2\nexit 3\n", 3,
     "User script failed: train.sh exited with status 3: last stderr line: fatal: no data"),
    ("legacy train()", "train.py", LEGACY, 1,
     PREFIX + "train() in train.py raised ValueError: learning rate 5 is too high"),
    ("secret straddling the cut", "train.py", STRADDLE, 1,
     (PREFIX + "ValueError: " + "v" * 730 + " ********")[:800 - len(CUT)] + CUT),
]


@pytest.mark.parametrize("name,entry,source,status,line", CASES, ids=[c[0] for c in CASES])
def test_the_first_1024_characters_name_the_error(job, name, entry, source, status, line):
    path = job.add_script(entry, source)
    if entry.endswith(".sh"):
        os.chmod(path, 0o755)
    job.entry(entry, api_token=TOKEN)
    result = job.run()
    assert result.returncode == status, result.stderr[-3000:]
    shown = result.failure[:SHOWN]
    assert result.failure_first_line == line
    assert shown.startswith(line + "\n")
    # None of the secret is in clear, in the file or in the launcher's ERROR line.
    for text in (result.failure, "\n".join(x for x in result.stderr.splitlines() if " ERROR mx_training_toolkit" in x)):
        assert not any(TOKEN[i:i + 4] in text for i in range(len(TOKEN) - 3)), text[:2000]
    # The whole file keeps its layout: line 1, a blank line, then the stderr tail.
    if "Last lines of its stderr:" in result.failure:
        assert result.failure.split("\n", 2)[1:2] == [""]


PEM = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(
    "MIIEv{:02d}".format(i) + "QIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj" for i in range(26)) + \
    "\n-----END PRIVATE KEY-----"
# Print the key on stderr, then enough lines that a window of the last lines starts inside it.
PRINT_KEY = ("import json, os, sys\n"
             "if os.environ['SM_CURRENT_HOST'] == os.environ.get('FAIL_ON', os.environ['SM_CURRENT_HOST']):\n"
             "    key = json.loads(os.environ['SM_HPS'])['private_key']\n"
             "    print('loaded key:', key, file=sys.stderr)\n"
             "    for i in range(int(os.environ['AFTER'])):\n"
             "        print('after the key', i, file=sys.stderr)\n"
             "    sys.exit(1)\n"
             "import time\n"
             "time.sleep(60)\n")


def _no_key_line(text):
    body = [line for line in PEM.splitlines() if line.startswith("MIIEv")]
    return not [line for line in body if line[:12] in text] and "PRIVATE KEY" not in text


def test_s2_a_multi_line_secret_the_tail_window_starts_inside_is_masked(job):
    job.add_script("train.py", PRINT_KEY)
    job.entry("train.py", private_key=PEM)
    result = job.run(AFTER="45")  # the last 60 lines: 15 lines of the key (of 28), then 45 more
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.failure_first_line == "User script failed: train.py exited with status 1"
    tail = result.failure.split("Last lines of its stderr:\n", 1)[1].splitlines()
    assert len(tail) == 60 and tail[-1] == "after the key 44" and tail[:15] == ["********"] * 15
    assert _no_key_line(result.failure)
    assert "MIIEv25" in result.stderr  # the script's own output is copied as it is


def test_s2_the_tail_relayed_to_the_first_host_is_masked(tmp_path):
    """The first host gets the failed host's last 20 lines: masked by the failed host before its
    window, and again by the first host."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(PRINT_KEY)
    root = str(tmp_path / "hosts")
    env = dict(os.environ, FAIL_ON="algo-2", AFTER="8")  # the last 20 lines would start inside the key
    proc = subprocess.run(MX_TRAIN + ["--code", str(code), "--entry-point", "train.py", "--hosts", "2",
                                      "--hp", "private_key=" + json.dumps(PEM), "--base-dir", root],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120,
                          env=env)
    text = proc.stdout.decode()
    assert proc.returncode == 1, text[-3000:]
    first, failed = read(root, "algo-1", "output", "failure"), read(root, "algo-2", "output", "failure")
    assert failed.splitlines()[0] == "User script failed: train.py on algo-2 exited with status 1"
    assert first.splitlines()[0] == \
        "Job failed on algo-2: User script failed: train.py on algo-2 exited with status 1"
    relayed = first.split("Last lines of its stderr:\n", 1)[1].splitlines()
    # Masked before the window: the key is one line now, and the 20 lines start before it.
    assert relayed == ["loaded key: ********"] + ["after the key {}".format(i) for i in range(8)]
    assert _no_key_line(first) and _no_key_line(failed)
    assert "mx-train: algo-1 exited with status 1" in text and "mx-train: algo-2 exited with status 1" in text


def test_s7_the_line_cut_inside_a_character_of_a_secret_shows_none_of_it(job):
    """The tail keeps the first 4000 bytes of a line; the cut falls inside a two-byte character of
    the secret. Before: the line ended in U+FFFD and the secret's start stayed in clear."""
    secret = "p\u00e4\u00e4\u00e4\u00e4ss-w\u00f6rd-" + "\u00fc" * 20
    job.add_script("train.py", "import sys\nsys.stderr.write('x' * 3991 + ' ' + sys.argv[2] + '\\n')\nsys.exit(1)\n")
    job.entry("train.py", db_password=secret)  # byte 4000 is the second byte of the fourth \u00e4
    result = job.run()
    assert result.returncode == 1
    assert result.failure_first_line == "User script failed: train.py exited with status 1"
    line = result.failure.splitlines()[3]
    assert line == "x" * 3991 + " ********"
    assert "\ufffd" not in result.failure and "p\u00e4" not in result.failure
