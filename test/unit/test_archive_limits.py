"""Archives built to exhaust the launcher: link chains that double at each step, disk-filling bombs."""

import gzip
import io
import os
import tarfile
import time

import pytest

from mx_training_toolkit import archive
from mx_training_toolkit.errors import CodeDownloadError

GIB = 1024 ** 3


def symlink_chain(path, n, base="."):
    """L0 -> base, Lk -> L(k-1)/L(k-1): checked naively, each link costs twice the one before."""
    with tarfile.open(path, "w:gz") as tar:
        for k in range(n):
            info = tarfile.TarInfo("L{}".format(k))
            info.type = tarfile.SYMTYPE
            info.linkname = base if k == 0 else "L{0}/L{0}".format(k - 1)
            tar.addfile(info)
    return path


@pytest.mark.parametrize("base", [".", "d"])
def test_a_doubling_symlink_chain_is_checked_in_linear_time(tmp_path, base):
    # 31 links took hours before (18 took 3.4 s): each link was resolved anew every time it was named.
    path = symlink_chain(str(tmp_path / "chain.tar.gz"), 31, base)
    (tmp_path / "dest").mkdir()
    began = time.monotonic()
    archive.extract_tarball(path, str(tmp_path / "dest"))
    assert os.readlink(str(tmp_path / "dest" / "L30")) == "L29/L29"
    assert time.monotonic() - began < 30  # a bound, not a speed test: exponential would be hours


def test_links_nested_deeper_than_the_kernel_follows_are_refused():
    links = {("a{}".format(k),): "a{}".format(k + 1) for k in range(100)}
    with pytest.raises(CodeDownloadError, match="links nested more than 40 deep"):
        archive._Links(links).resolve((), "a0", "a0")


def test_a_link_that_leads_ever_deeper_is_refused():
    # d -> d/x/x: each step through the link adds a level; the resolved path may not exceed the depth.
    links = {("d",): "d/x"}
    with pytest.raises(CodeDownloadError, match="link loop"):
        archive._Links(links).resolve((), "d/y", "d")


def gzip_bomb(path, size):
    """A .tar.gz of one file of ``size`` zero bytes (about 1 MB per GiB compressed)."""
    info = tarfile.TarInfo("zeros.bin")
    info.size = size
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        tar.addfile(info)  # the header only: the data follows, written below
    header = raw.getvalue()[:512]
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(header)
        chunk = b"\0" * (1 << 20)
        for _ in range(size // len(chunk)):
            out.write(chunk)
        out.write(b"\0" * (size % len(chunk) + (-size) % 512 + 1024))  # padding and the end blocks
    return path


# The bomb is 64 MiB, not the GiB a real one would be: sizes and the fixed margin are scaled by
# SCALE, so each row asks extract_tarball the same question as at full size.
SCALE = 16
MIB = 1024 ** 2
BOMB = GIB // SCALE
MIN_FREE = archive.MIN_FREE // SCALE


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return gzip_bomb(str(tmp_path_factory.mktemp("bomb") / "bomb.tar.gz"), BOMB)


@pytest.mark.parametrize("free,total", [
    (1 * GIB + 200 * MIB, 20 * GIB),  # would leave under the 1 GiB margin (5 % of 20 GiB)
    (1 * GIB, 2 * GIB),  # would leave nothing
])
def test_an_archive_that_would_fill_the_volume_is_refused(tmp_path, bomb, free, total):
    assert os.path.getsize(bomb) < 1 * MIB  # a bomb: under a MiB that expands to 64 MiB
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(CodeDownloadError) as e:
        archive.extract_tarball(bomb, str(dest), space=lambda _p: (free // SCALE, total // SCALE), min_free=MIN_FREE)
    assert str(e.value).startswith("the code archive {} expands to 64.0 MiB, but its volume has ".format(bomb))
    assert os.listdir(str(dest)) == []


@pytest.mark.parametrize("free,total", [
    (10 * GIB, 20 * GIB),  # plenty
    (3 * GIB, 4 * GIB),  # 2 GiB left, margin 256 MiB
])
def test_an_archive_that_fits_is_not_refused(free, total):
    archive.check_space("a.tgz", GIB, free, total)  # no extraction of a GiB in a unit test
    archive.check_space("a.tgz", BOMB, free // SCALE, total // SCALE, min_free=MIN_FREE)  # as scaled above


@pytest.mark.parametrize("needed,free,total,message", [
    (GIB, 1 * GIB, 2 * GIB, "the code archive a.tgz expands to 1.0 GiB, but its volume has 1.0 GiB free and "
                            "256.0 MiB of it must stay free"),
    (5 * GIB, 6 * GIB, 100 * GIB, "the code archive a.tgz expands to 5.0 GiB, but its volume has 6.0 GiB free and "
                                  "5.0 GiB of it must stay free"),
])
def test_the_space_message_says_what_was_needed(needed, free, total, message):
    with pytest.raises(CodeDownloadError) as e:
        archive.check_space("a.tgz", needed, free, total)
    assert str(e.value) == message


def test_several_gib_fit_on_a_large_volume():
    archive.check_space("big.tgz", 4 * GIB, 50 * GIB, 100 * GIB)
