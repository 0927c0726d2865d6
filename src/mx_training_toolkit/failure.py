"""The success and failure files (docs/contract.md sections 1 and 6). Exactly one place writes them.

Both are written without following links: a script that replaced ``output/success`` with a
symlink must not get another file truncated through it. The failure file's text is the
launcher's own, so the job's secret hyperparameter values are masked in it (``masking.mask``),
its copy of the failed process's stderr included: ``Outcome.text`` masks each part before it is
cut (line 1) and the stderr tail is masked before its window (``output.Tail``).
"""

import os
import time

from .log import get_logger

log = get_logger(__name__)

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _create(path, text):
    """Create ``path`` anew (never through a link) with ``text``. False if it already exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:  # file names may not be UTF-8
        f.write(text)
    return True


def _remove(path, why):
    try:
        os.unlink(path)  # a link is removed, never its target
        log.info("output: removed %s %s", path, why)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        _move_aside(path)
    except OSError as e:
        log.warning("output: cannot remove %s: %s", path, e)


def _move_aside(path):
    """A directory where an outcome file belongs is the user's: never deleted, renamed to a free name
    beside it, so that the outcome can be written (and no directory reads as the outcome)."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for n in range(1000):
        aside = "{}.directory-{}{}".format(path, stamp, "-{}".format(n) if n else "")
        if os.path.lexists(aside):
            continue
        try:
            os.rename(path, aside)  # rename(2) would replace an empty directory made meanwhile: lexists first
        except OSError as e:
            log.warning("output: %s is a directory and cannot be moved aside: %s", path, e)
            return
        log.warning("output: %s was a directory; moved it to %s", path, aside)
        return
    log.warning("output: %s is a directory; no free name to move it to", path)


def user_wrote_failure(paths):
    """Whether something (the user script) wrote ``output/failure`` during the job."""
    return os.path.lexists(paths.failure_file)


def write_outcome(paths, outcome):
    """Write ``outcome``: the success file, or the failure file (first writer wins: a failure
    file the job wrote itself is kept). A failure also removes a success file the job wrote."""
    try:
        os.makedirs(paths.output_dir, exist_ok=True)
    except OSError as e:
        log.error("output: cannot create %s: %s", paths.output_dir, e)
        return
    if outcome.ok:
        _remove(paths.success_file, "(it is written anew)")
        try:
            _create(paths.success_file, "")
        except OSError as e:
            log.error("output: cannot write %s: %s", paths.success_file, e)
        return
    _remove(paths.success_file, "written by the job, which failed")
    try:
        if not _create(paths.failure_file, outcome.text):
            log.info("failure: %s already exists (written by the job); keeping it", paths.failure_file)
    except OSError as e:
        log.error("failure: cannot write %s: %s", paths.failure_file, e)


def clear_stale(paths):
    """Remove the success and failure files a previous run in this base directory left behind."""
    for path in (paths.success_file, paths.failure_file):
        _remove(path, "left by an earlier run")
