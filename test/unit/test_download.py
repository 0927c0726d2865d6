"""Downloads that a stop can interrupt, bounded S3 stalls, and the staging directories left behind."""

import os
import select
import signal
import socket
import sys
import threading
import time

import pytest

from fake_s3 import CREDENTIALS, SilentEndpoint
from fakes import LoopbackServer
from mx_training_toolkit import download, names, settings, user_code
from mx_training_toolkit.errors import CodeDownloadError, Terminated

# ---- S3 timeouts ------------------------------------------------------------------------------


def test_default_timeouts():
    assert download.s3_timeouts(None) == (download.S3_CONNECT_TIMEOUT, download.S3_READ_TIMEOUT) == (10.0, 30.0)


def test_the_timeout_setting_is_both_timeouts():
    # A bad MX_TRAINING_S3_TIMEOUT_SECONDS never gets here: it is a configuration error (test_settings).
    assert download.s3_timeouts(settings.from_environ({names.S3_TIMEOUT_ENV: "2.5"}).s3_timeout) == (2.5, 2.5)


# ---- run_interruptibly ------------------------------------------------------------------------


def test_the_result_and_the_exception_of_the_work_reach_the_caller():
    assert download.run_interruptibly(lambda: 42, "answer") == 42

    def fails():
        raise CodeDownloadError("no such key")

    with pytest.raises(CodeDownloadError, match="no such key"):
        download.run_interruptibly(fails, "fails")


@pytest.fixture
def terminating_handler():
    """SIGUSR1 raises ``Terminated`` in the main thread, as the launcher's SIGTERM handler does."""

    def on_signal(signum, frame):
        raise Terminated(signum)

    previous = signal.signal(signal.SIGUSR1, on_signal)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR1, previous)


def _waiting_in_run_interruptibly(thread_id):
    """Whether the thread ``thread_id`` is inside ``run_interruptibly``'s wait for its work."""
    frame = sys._current_frames().get(thread_id)
    names = []
    while frame is not None:
        names.append(frame.f_code.co_name)
        frame = frame.f_back
    return "run_interruptibly" in names and "join" in names  # in a step of the wait, not between them


def _stop_while_blocked(deliver):
    """Run work that blocks until released; once the main thread waits for it,
    ``deliver(work_thread_id)`` sends the signal. -> whether ``Terminated`` reached the caller
    while the work was still blocked (a watchdog releases the work after 30 s, so a wait that
    the signal does not end fails the test instead of hanging it)."""
    release, interrupted = threading.Event(), threading.Event()
    main = threading.get_ident()
    worker = {}

    def work():
        worker["id"] = threading.get_ident()
        release.wait(60)

    def stop_then_watch():
        deadline = time.monotonic() + 30
        while not ("id" in worker and _waiting_in_run_interruptibly(main)) and time.monotonic() < deadline:
            time.sleep(0.001)
        deliver(worker["id"])
        if not interrupted.wait(30):
            release.set()

    threading.Thread(target=stop_then_watch, daemon=True).start()
    try:
        with pytest.raises(Terminated):
            download.run_interruptibly(work, "blocked")
        return not release.is_set()
    finally:
        interrupted.set()
        release.set()


def test_a_signal_to_the_process_interrupts_the_wait(terminating_handler):
    abandoned = _stop_while_blocked(lambda _tid: os.kill(os.getpid(), signal.SIGUSR1))
    assert abandoned  # the caller did not wait for the work to end


def test_a_signal_the_kernel_gives_to_the_download_thread_still_interrupts_the_wait(terminating_handler):
    # The main thread sleeps in join() and is not woken by a signal delivered to another
    # thread: only the short steps of the wait let its handler run.
    abandoned = _stop_while_blocked(lambda tid: signal.pthread_kill(tid, signal.SIGUSR1))
    assert abandoned


# ---- S3 endpoints that do not answer ----------------------------------------------------------


@pytest.fixture
def aws_env(monkeypatch):
    pytest.importorskip("boto3")
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def silent_server():
    server = SilentEndpoint()
    try:
        yield server
    finally:
        server.close()


def test_an_endpoint_that_never_answers_ends_the_download(tmp_path, aws_env, silent_server):
    url = "s3://training-code/jobs/j-1/sourcedir.tar.gz"
    environ = {names.S3_ENDPOINT_ENV: silent_server.url, names.S3_TIMEOUT_ENV: "0.3"}
    began = time.monotonic()
    with pytest.raises(CodeDownloadError) as caught:
        download.fetch(url, str(tmp_path / "staging"), settings.from_environ(environ), "us-east-1")
    elapsed = time.monotonic() - began
    assert str(caught.value) == ("cannot download {}: the S3 endpoint {} did not answer (no reply within 0.3 s, "
                                 "3 attempts)".format(url, silent_server.url))
    assert len(silent_server.connections) == download.S3_ATTEMPTS
    assert elapsed < 30  # three 0.3 s timeouts and the backoff between them, not the 30 s default read timeout
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"])
def test_the_aws_endpoint_variables_name_the_endpoint_too(tmp_path, aws_env, silent_server, variable):
    # SDK local mode sets AWS_ENDPOINT_URL_S3 in every container; the download goes there, and the
    # error names it as it names S3_ENDPOINT_URL's.
    url = "s3://training-code/jobs/j-1/sourcedir.tar.gz"
    with pytest.raises(CodeDownloadError) as caught:
        download.fetch(url, str(tmp_path / "staging"),
                       settings.from_environ({variable: silent_server.url, names.S3_TIMEOUT_ENV: "0.3"}), "us-east-1")
    assert str(caught.value) == ("cannot download {}: the S3 endpoint {} did not answer (no reply within 0.3 s, "
                                 "3 attempts)".format(url, silent_server.url))
    assert len(silent_server.connections) == download.S3_ATTEMPTS


def test_s3_endpoint_url_wins_over_the_one_sdk_local_mode_sets(tmp_path, aws_env, silent_server):
    url = "s3://training-code/jobs/j-1/sourcedir.tar.gz"
    with socket.socket() as unused:  # a port nothing listens on: a download sent there fails at once
        unused.bind(("127.0.0.1", 0))
        elsewhere = "http://127.0.0.1:{}".format(unused.getsockname()[1])
    environ = {names.S3_ENDPOINT_ENV: silent_server.url, "AWS_ENDPOINT_URL_S3": elsewhere,
               names.S3_TIMEOUT_ENV: "0.3"}
    with pytest.raises(CodeDownloadError) as caught:
        download.fetch(url, str(tmp_path / "staging"), settings.from_environ(environ), "us-east-1")
    assert "the S3 endpoint {} did not answer".format(silent_server.url) in str(caught.value)
    assert len(silent_server.connections) == download.S3_ATTEMPTS


def test_an_endpoint_that_never_accepts_ends_the_download(tmp_path, aws_env):
    # A listening socket whose accept queue is full: the kernel drops further SYNs, so
    # connecting times out (what a firewall that drops packets looks like).
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        endpoint = "http://127.0.0.1:{}".format(server.getsockname()[1])
        fillers = []
        try:
            for _ in range(4):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(server.getsockname())
                fillers.append(filler)
            # The queue is full once the first filler's handshake is done (the others' SYNs are dropped).
            assert select.select([], fillers[:1], [], 10)[1], "the first filler never connected"
            url = "s3://training-code/sourcedir.tar.gz"
            with pytest.raises(CodeDownloadError) as caught:
                download.fetch(url, str(tmp_path / "staging"), settings.Settings(s3_endpoint=endpoint, s3_timeout=0.3))
        finally:
            for filler in fillers:
                filler.close()
    assert str(caught.value) == ("cannot download {}: the S3 endpoint {} did not answer (no connection within "
                                 "0.3 s, 3 attempts)".format(url, endpoint))


class StallingObjectServer(LoopbackServer):
    """A loopback HTTP server that answers HEAD for a 100-byte object and, for GET, sends the
    headers and 10 bytes of the body, then nothing more."""

    HEADERS = ("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: binary/octet-stream\r\n"
               "ETag: \"0123456789abcdef\"\r\nLast-Modified: Tue, 01 Dec 2026 00:00:00 GMT\r\n\r\n")
    def __init__(self):
        super().__init__()
        self.gets = 0

    def serve(self, conn):
        data = b""
        try:
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                request, data = data.split(b"\r\n\r\n", 1)
                if request.startswith(b"HEAD "):
                    conn.sendall(self.HEADERS.encode())
                    continue
                self.gets += 1
                conn.sendall(self.HEADERS.encode() + b"x" * 10)
                return  # and never the other 90 bytes
        except OSError:
            return


def test_an_object_whose_body_stalls_ends_the_download(tmp_path, aws_env):
    server = StallingObjectServer()
    try:
        url = "s3://training-code/sourcedir.tar.gz"
        with pytest.raises(CodeDownloadError) as caught:
            download.fetch(url, str(tmp_path / "staging"), settings.Settings(s3_endpoint=server.url, s3_timeout=0.3))
    finally:
        server.close()
    assert str(caught.value) == ("cannot download {}: the S3 endpoint {} did not answer (no reply within 0.3 s, "
                                 "3 attempts)".format(url, server.url))
    assert server.gets == download.S3_ATTEMPTS
    assert os.listdir(str(tmp_path)) == []


# ---- staging directories ----------------------------------------------------------------------


def _base_with_leftovers(tmp_path):
    base = tmp_path / "ml"
    code_dir = base / "code"
    code_dir.mkdir(parents=True)
    (code_dir / "train.py").write_text("print(1)\n")
    for name in (".code-download-a1b2c3", ".code-download-xyz"):
        (base / name / "code" / "lib").mkdir(parents=True)
        (base / name / "code" / "lib" / "helper.py").write_text("")
        (base / name / "code.tar.gz.5f3e").write_bytes(b"partial")
    (base / ".code-download-file").write_text("not a directory: not ours")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(str(tmp_path / "elsewhere"), str(base / ".code-download-link"))
    (base / "model").mkdir()
    return base, code_dir


def test_leftover_staging_directories_are_removed_one_log_line_each(tmp_path, capsys):
    base, code_dir = _base_with_leftovers(tmp_path)
    removed = user_code.remove_download_leftovers(str(code_dir))
    assert removed == [str(base / ".code-download-a1b2c3"), str(base / ".code-download-xyz")]
    assert sorted(os.listdir(str(base))) == [".code-download-file", ".code-download-link", "code", "model"]
    assert os.listdir(str(tmp_path / "elsewhere")) == []  # the link's target is untouched
    assert (code_dir / "train.py").read_text() == "print(1)\n"
    lines = [line for line in capsys.readouterr().err.splitlines() if "code-download" in line]
    assert len(lines) == 2
    for line, path in zip(lines, removed):
        assert line.endswith(" INFO mx_training_toolkit.download: code: removed {}, left by an earlier launch "
                             "that stopped during its download".format(path))


def test_nothing_to_remove(tmp_path, capsys):
    code_dir = tmp_path / "ml" / "code"
    assert user_code.remove_download_leftovers(str(code_dir)) == []  # no base directory at all
    code_dir.mkdir(parents=True)
    assert user_code.remove_download_leftovers(str(code_dir)) == []
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(os.geteuid() == 0, reason="root removes files from read-only directories")
def test_a_leftover_that_cannot_be_removed_is_a_warning(tmp_path, capsys):
    base, code_dir = _base_with_leftovers(tmp_path)
    stuck = base / ".code-download-xyz" / "code"
    stuck.chmod(0o555)
    try:
        removed = user_code.remove_download_leftovers(str(code_dir))
    finally:
        stuck.chmod(0o755)
    assert removed == [str(base / ".code-download-a1b2c3")]
    err = capsys.readouterr().err
    assert "WARNING mx_training_toolkit.download: code: cannot remove {}, left by an earlier launch: ".format(
        base / ".code-download-xyz") in err


def test_a_download_leaves_no_staging_directory(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("print(1)\n")
    base = tmp_path / "ml"
    download.download(str(source), str(base / "code"), settings.Settings())
    assert os.listdir(str(base)) == ["code"]
    with pytest.raises(CodeDownloadError):
        download.download(str(tmp_path / "missing"), str(base / "code"), settings.Settings())
    assert os.listdir(str(base)) == ["code"]
