"""Fixtures of the integration tests; their helpers are in ``support.py``."""

import pytest

from .support import Job


@pytest.fixture
def job(tmp_path):
    return Job(tmp_path / "ml")
