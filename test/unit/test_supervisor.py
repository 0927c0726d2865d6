import pytest

from mx_training_toolkit.failure import failure_text
from mx_training_toolkit.supervisor import describe_status, exit_status


@pytest.mark.parametrize("returncode,status", [(0, 0), (1, 1), (3, 3), (-9, 137), (-15, 143), (-11, 139), (255, 255)])
def test_exit_status(returncode, status):
    assert exit_status(returncode) == status


@pytest.mark.parametrize("status,words", [
    (0, "exited successfully"),
    (1, "exited with status 1"),
    (3, "exited with status 3"),
    (128, "exited with status 128"),
    (137, "was killed by SIGKILL (exit status 137); probably out of memory"),
    (143, "was killed by SIGTERM (exit status 143)"),
    (139, "was killed by SIGSEGV (exit status 139)"),
    (130, "was killed by SIGINT (exit status 130)"),
    (255, "exited with status 255"),
])
def test_describe_status(status, words):
    assert describe_status(status) == words


@pytest.mark.parametrize("step,message,detail,text", [
    ("user script", "train.py exited with status 3", "Traceback...\nValueError: x",
     "User script failed: train.py exited with status 3\n\nTraceback...\nValueError: x\n"),
    ("configuration", "hyperparameters.json: invalid JSON", "",
     "Configuration error: hyperparameters.json: invalid JSON\n"),
    ("configuration", "two\nlines", "", "Configuration error: two lines\n"),
    ("something new", "m", "", "Something new failed: m\n"),
])
def test_failure_text(step, message, detail, text):
    assert failure_text(step, message, detail) == text


@pytest.mark.parametrize("code,status", [(None, 0), (0, 0), (3, 3), (256, 0), (257, 1), (True, 1), ("bye", 1)])
def test_status_of_sys_exit_is_pythons(code, status):
    from mx_training_toolkit.runner import status_of_exit
    assert status_of_exit(SystemExit(code)) == status
