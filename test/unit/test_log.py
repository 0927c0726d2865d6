import io
import time

import pytest

from mx_training_toolkit import log


@pytest.fixture
def stream():
    out = io.StringIO()
    log.set_stream(out)
    yield out
    log.set_stream(None)
    log.set_level(log.INFO)


def test_line_format():
    now = time.mktime((2026, 11, 23, 5, 40, 1, 0, 0, -1)) + 0.8665
    assert log.format_line("mx_training_toolkit", log.INFO, "job finished", now) == \
        "2026-11-23 05:40:01,866 INFO mx_training_toolkit: job finished\n"


@pytest.mark.parametrize("level,shown", [(10, ["DEBUG", "INFO", "WARNING", "ERROR"]), (20, ["INFO", "WARNING", "ERROR"]),
                                         (30, ["WARNING", "ERROR"]), (40, ["ERROR"]), (50, [])])
def test_level_filters(stream, level, shown):
    log.set_level(level)
    logger = log.get_logger("t")
    logger.debug("d %s", 1)
    logger.info("i")
    logger.warning("w")
    logger.error("e")
    assert [line.split()[2] for line in stream.getvalue().splitlines()] == shown


def test_arguments_and_exception(stream):
    logger = log.get_logger("t")
    logger.info("%d%% of %s", 50, "it")
    try:
        raise ValueError("bad")
    except ValueError:
        logger.exception("failed at %s", "step")
    text = stream.getvalue()
    assert "INFO t: 50% of it" in text
    assert "ERROR t: failed at step\n    Traceback (most recent call last)" in text
    assert "ValueError: bad" in text


def test_every_line_is_masked_once_a_masker_is_in_use(stream):
    from mx_training_toolkit import masking

    logger = log.get_logger("t")
    masking.use(masking.Masker({"db_password": "hunter2"}))
    try:
        logger.info("run: train.py --db_password %s", "hunter2")
        logger.error("failed:\n%s", "error: unrecognized arguments: --db_password hunter2")
    finally:
        masking.use(None)
    text = stream.getvalue()
    assert "hunter2" not in text
    assert "INFO t: run: train.py --db_password ********\n" in text
    assert "error: unrecognized arguments: --db_password ********\n" in text


def test_enabled_follows_the_level():
    log.set_level(log.INFO)
    assert log.enabled(log.INFO) and not log.enabled(log.DEBUG)
    log.set_level(log.DEBUG)
    assert log.enabled(log.DEBUG)
    log.set_level(log.INFO)


def test_shorten_keeps_short_texts_and_says_how_much_was_cut():
    assert log.shorten("x" * 200) == "x" * 200
    assert log.shorten("x" * 45000) == "x" * 200 + "...[44800 more characters]"


def test_a_value_with_control_characters_cannot_forge_a_launcher_line(stream):
    logger = log.get_logger("mx_training_toolkit")
    forged = "1\n2026-12-05 10:00:00,000 INFO mx_training_toolkit: job finished successfully"
    logger.info("run: python train.py --epochs %s --name %s", forged, "a\rb\x1b[31mred\x7f\x85")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("INFO mx_training_toolkit: run: python train.py --epochs 1\\n2026-12-05 10:00:00,000 "
                             "INFO mx_training_toolkit: job finished successfully --name a\\rb\\x1b[31mred\\x7f\\x85")


def test_a_message_of_several_lines_continues_indented(stream):
    log.get_logger("t").error("%s", 12)  # not a string: shown as it is
    log.get_logger("t").error("failed:\nline two\x1b")
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 2)[2] for line in lines[:2]] == ["ERROR t: 12", "ERROR t: failed:"]
    assert lines[2] == "    line two\\x1b"
