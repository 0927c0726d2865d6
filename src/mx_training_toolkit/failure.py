"""The success and failure files (CONTRACT section 1). Exactly one place writes them."""

import os
from .log import get_logger

log = get_logger(__name__)

TITLES = {
    "configuration": "Configuration error",
    "code download": "Code download failed",
    "pip install": "pip install failed",
    "host resolution": "Host resolution failed",
    "user script": "User script failed",
    "parameter server": "Parameter server failed",
    "stopped": "Job stopped",
    "peer host": "Another host of the job failed",
    "host channel": "Connection between hosts failed",
    "internal error": "Internal error",
}


MAX_FIRST_LINE = 800


def title(step):
    """The words a failure file's first line starts with for ``step``."""
    return TITLES.get(step, step[:1].upper() + step[1:] + " failed")


def failure_text(step, message, detail=""):
    """First line: which step failed and why, in words; then the detail (a stderr tail)."""
    first = "{}: {}".format(title(step), message)
    first = " ".join(first.splitlines())
    if len(first) > MAX_FIRST_LINE:  # the platform shows 1024 characters: keep room for the detail
        first = first[:MAX_FIRST_LINE - 3] + "..."
    return first + "\n" + ("\n" + detail.rstrip("\n") + "\n" if detail else "")


def write_failure(paths, step, message, detail=""):
    """Write ``output/failure`` unless someone (the user script) already did: first writer wins."""
    text = failure_text(step, message, detail)
    try:
        os.makedirs(paths.output_dir, exist_ok=True)
        try:
            fd = os.open(paths.failure_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            log.info("failure: %s already exists (written by the job); keeping it", paths.failure_file)
            return False
    except OSError as e:
        log.error("failure: cannot write %s: %s", paths.failure_file, e)
        return False
    with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:  # file names may not be UTF-8
        f.write(text)
    return True


def write_success(paths):
    os.makedirs(paths.output_dir, exist_ok=True)
    with open(paths.success_file, "w"):
        pass


def clear_stale(paths):
    """Remove the success and failure files a previous run in this base directory left behind."""
    for path in (paths.success_file, paths.failure_file):
        try:
            os.unlink(path)
            log.info("output: removed %s left by an earlier run", path)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("output: cannot remove %s: %s", path, e)
