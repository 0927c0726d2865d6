"""What a code source really writes is what the space check counts: hard links in an archive are
made as links (their data once), and a directory source is held to the archive's rules."""

import io
import os
import tarfile

import pytest

from mx_training_toolkit import archive
from mx_training_toolkit.errors import CodeDownloadError

MIB = 1024 * 1024


def archive_with_hard_links(path, size, links):
    """A tar.gz with one ``size``-byte file of zeros and ``links`` hard links to it (a few KiB)."""
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("big.bin")
        info.size = size
        tar.addfile(info, io.BytesIO(bytes(size)))
        for i in range(links):
            link = tarfile.TarInfo("link{}.bin".format(i))
            link.type = tarfile.LNKTYPE
            link.linkname = "big.bin"
            tar.addfile(link)


def test_hard_links_are_extracted_as_links_not_as_copies(tmp_path):
    path = str(tmp_path / "code.tar.gz")
    archive_with_hard_links(path, 4 * MIB, 10)
    dest = tmp_path / "code"
    dest.mkdir()
    # The check counts 4 MiB; copies would write 44 MiB: a volume with 8 MiB to spare must take it.
    archive.extract_tarball(path, str(dest), space=lambda _p: (archive.MIN_FREE + 8 * MIB, 1 << 30))
    inodes = {os.stat(str(dest / name)).st_ino for name in os.listdir(str(dest))}
    assert len(os.listdir(str(dest))) == 11 and len(inodes) == 1
    assert os.stat(str(dest / "link9.bin")).st_size == 4 * MIB


def make_tree(root):
    (root / "pkg").mkdir(parents=True)
    (root / "train.py").write_text("print('hi')\n")
    (root / "pkg" / "data.bin").write_bytes(bytes(MIB))
    os.symlink("pkg/data.bin", str(root / "inside"))
    os.symlink("pkg", str(root / "pkg-link"))


def test_a_directory_source_with_files_and_links_inside_is_accepted(tmp_path):
    make_tree(tmp_path / "src")
    archive.check_directory(str(tmp_path / "src"), str(tmp_path), space=lambda _p: (100 * 1024 * MIB, 1 << 40))


@pytest.mark.parametrize("make, message", [
    (lambda root: os.mkfifo(str(root / "pkg" / "pipe")),
     "the code directory {src} has a special file (device, fifo or socket): 'pkg/pipe'"),
    (lambda root: os.symlink("/etc/passwd", str(root / "out")),
     "the code directory {src} has a link that points out of it: 'out' -> '/etc/passwd'"),
    (lambda root: os.symlink("../..", str(root / "pkg" / "up")),
     "the code directory {src} has a link that points out of it: 'pkg/up' -> '../..'"),
])
def test_a_directory_source_with_a_special_file_or_a_link_out_is_refused(tmp_path, make, message):
    src = tmp_path / "src"
    make_tree(src)
    make(src)
    with pytest.raises(CodeDownloadError) as e:
        archive.check_directory(str(src), str(tmp_path), space=lambda _p: (100 * 1024 * MIB, 1 << 40))
    assert str(e.value) == message.format(src=src)


def test_a_directory_source_that_would_fill_the_volume_is_refused(tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    os.link(str(src / "pkg" / "data.bin"), str(src / "copy.bin"))  # copied as a file: counted twice
    with pytest.raises(CodeDownloadError) as e:
        archive.check_directory(str(src), str(tmp_path), space=lambda _p: (archive.MIN_FREE + MIB, 1 << 30))
    assert str(e.value).startswith("the code directory {} expands to 2.0 MiB, but its volume has".format(src))
