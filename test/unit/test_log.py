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
    assert "ERROR t: failed at step\nTraceback (most recent call last)" in text
    assert "ValueError: bad" in text
