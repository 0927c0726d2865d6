"""The status file a worker records for the launcher (``runner.record_status`` / ``read_status``)."""

import json
import os

import pytest

from mx_training_toolkit import runner


@pytest.fixture
def status_file(tmp_path):
    """(path, environ naming it) for ``record_status``."""
    path = str(tmp_path / "worker-status")
    return path, {runner.STATUS_FILE_ENV: path}


@pytest.mark.parametrize("status, reason", [
    (0, ""),
    (1, "train() in train.py raised ValueError: bad learning rate 5"),
    (3, ""),
    (255, "cannot write the model to /opt/ml/model: [Errno 28] No space left on device: 'é'"),
    (137, 'quotes " and \\ backslashes and\ttabs'),
])
def test_round_trip(status_file, status, reason):
    path, environ = status_file
    runner.record_status(status, environ, reason=reason)
    assert runner.read_status(path) == (status, reason)
    with open(path) as f:
        assert json.load(f) == {"status": status, "reason": reason}


def test_without_a_reason_the_reason_is_empty(status_file):
    path, environ = status_file
    runner.record_status(4, environ)  # the call existing callers make
    assert runner.read_status(path) == (4, "")


def test_recording_again_replaces_the_record_and_leaves_no_temporary_file(status_file, tmp_path):
    path, environ = status_file
    runner.record_status(1, environ, reason="a much longer reason than the one that follows it")
    runner.record_status(2, environ, reason="short")
    assert runner.read_status(path) == (2, "short")
    assert os.listdir(str(tmp_path)) == ["worker-status"]


def test_the_environment_of_the_process_is_the_default(status_file, monkeypatch):
    path, _environ = status_file
    monkeypatch.setenv(runner.STATUS_FILE_ENV, path)
    runner.record_status(5, reason="from os.environ")
    assert runner.read_status(path) == (5, "from os.environ")


def test_no_file_named_no_file_written(tmp_path):
    runner.record_status(1, {}, reason="nowhere to go")
    runner.record_status(1, {runner.STATUS_FILE_ENV: ""})
    assert os.listdir(str(tmp_path)) == []


def test_a_file_that_cannot_be_written_is_not_an_error(tmp_path):
    path = str(tmp_path / "no-such-dir" / "worker-status")
    runner.record_status(1, {runner.STATUS_FILE_ENV: path}, reason="lost")
    assert runner.read_status(path) is None
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize("text, expected", [
    ("3", (3, "")),  # the older format: the status alone
    ("0\n", (0, "")),
    ("  137 \n", (137, "")),
    ('{"status": 1}', (1, "")),
    ('{"status": 1, "reason": null}', (1, "")),
    ('{"status": 1, "reason": 7}', (1, "")),
    ('{"status": 2, "reason": "why", "later": "fields are ignored"}', (2, "why")),
])
def test_read_tolerates_the_older_format_and_partial_records(tmp_path, text, expected):
    path = tmp_path / "worker-status"
    path.write_text(text)
    assert runner.read_status(str(path)) == expected


@pytest.mark.parametrize("data", [
    b"",
    b"\n",
    b"garbage",
    b"3 4",
    b"3.5",
    b'"3"',
    b"true",
    b"null",
    b"[1]",
    b'{"status": "1"}',
    b'{"status": true}',
    b'{"reason": "no status"}',
    b'{"status": 1, "reason": "cut of',
    b"\xff\xfe\x00",
    b"[" * 100000,
])
def test_read_returns_none_for_garbage(tmp_path, data):
    path = tmp_path / "worker-status"
    path.write_bytes(data)
    assert runner.read_status(str(path)) is None


def test_read_returns_none_for_a_missing_or_unreadable_file(tmp_path):
    assert runner.read_status(str(tmp_path / "missing")) is None
    assert runner.read_status(str(tmp_path)) is None  # a directory


SHUT_DOWN = "Horovod has been shut down. This was caused by an exception on one of the ranks"


def error_of(name, module, message):
    """An exception of a class named ``name`` defined in ``module`` (as MXNet's and Horovod's are)."""
    return type(name, (RuntimeError,), {"__module__": module})(message)


@pytest.mark.parametrize("error,consequence", [
    (error_of("MXNetError", "mxnet.base", SHUT_DOWN), True),  # what MXNet's engine raises in the other ranks
    (error_of("HorovodInternalError", "horovod.common.exceptions", "ring broken"), True),
    (error_of("MXNetError", "mxnet.base", "Check failed: shape mismatch"), False),
    # The words alone decide nothing: a script's own error that quotes them is its own failure.
    (ValueError("my check failed: " + SHUT_DOWN), False),
    (RuntimeError("MXNetError: " + SHUT_DOWN), False),
    (error_of("HorovodInternalError", "my_script", "not Horovod's"), False),
    (ValueError("rank 2 fails on purpose"), False),
    (KeyError("Horovod"), False),
])
def test_a_failure_that_only_says_another_rank_failed_is_a_consequence(tmp_path, error, consequence):
    assert runner.is_consequence(error) is consequence
    path = str(tmp_path / "status")
    runner.record_status(1, {runner.STATUS_FILE_ENV: path}, consequence=runner.is_consequence(error))
    assert runner.read_record(path)[2] is consequence
    assert runner.read_status(path) == (1, "")


def test_the_reason_is_kept_bounded(status_file):
    path, environ = status_file
    runner.record_status(1, environ, reason="\U0001f600" * (runner.MAX_REASON + 500))  # 12 bytes each in JSON
    assert os.path.getsize(path) <= runner.MAX_RECORD
    assert runner.read_status(path) == (1, "\U0001f600" * runner.MAX_REASON)


class _Custom(Exception):
    pass


class _BadStr(Exception):
    def __str__(self):
        raise RuntimeError("no")


@pytest.mark.parametrize("error,text", [
    (ValueError("bad value"), "ValueError: bad value"),
    (ValueError("two\nlines"), "ValueError: two\nlines"),  # whole: line 1 makes it one line, after masking
    (KeyError("k"), "KeyError: 'k'"),
    (KeyboardInterrupt(), "KeyboardInterrupt"),
    (SystemExit("no data found"), "SystemExit: no data found"),
    (_Custom("x"), "test_runner_status._Custom: x"),
    (_BadStr(), "test_runner_status._BadStr: <exception str() failed>"),
])
def test_describe_exception_as_a_traceback_ends(error, text):
    assert runner.describe_exception(error).replace("test.unit.", "") == text


@pytest.mark.parametrize("text", ["", "plain", 'q"uo\\te', "tab\there\nnew\rline\x00\x1f\x7f", "caf\u00e9 \u20ac",
                                  "\U0001f600 and \ud83d alone \udcff", "\u2028\u2029\ufeff"])
def test_json_string_is_read_back_by_json(text):
    written = runner.json_string(text)
    assert written.isascii() and json.loads(written) == text
