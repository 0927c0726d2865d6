"""Safe extraction of the user's code archive: nothing lands outside the code tree.

Every member is checked against the archive's own links before anything is written; nothing is
ever written through a link; hard links must point to an earlier regular file of the archive, and
are made as hard links (their data is written once); device files and FIFOs are refused; setuid
bits are dropped. A directory given as the code is held to the same rules (``check_directory``).
"""

import lzma
import os
import shutil
import stat
import tarfile
import zlib

from .errors import CodeDownloadError


class _UnsafeArchive(CodeDownloadError):
    pass


def _parts(name):
    """The path components of an archive member name ('./a//b' -> ('a', 'b')); refuses escapes."""
    if name.startswith("/") or os.path.isabs(name):
        raise _UnsafeArchive("the code archive has an absolute path: {!r}".format(name))
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        raise _UnsafeArchive("the code archive has a path with '..': {!r}".format(name))
    return parts


MAX_LINK_STEPS = 100000  # path components followed while checking one archive's links
MAX_DEPTH = 1024  # components in a path a link resolves to
MAX_NESTING = 40  # links followed within links, as the kernel allows


class _Links:
    """The archive's symlinks, each resolved once (memoised): a chain of links that name each other
    twice over (``L2 -> L1/L1``) costs linear time, not exponential; a loop or an absurd depth is
    refused."""

    def __init__(self, links):
        self._links = links  # link components -> its target text
        self._resolved = {}
        self._active = set()
        self._steps = 0

    def resolve(self, start_dir, target, name):
        """Follow ``target`` from ``start_dir`` (components) through the archive's own links ->
        the components it ends at; raises if any step leaves the tree. Resolving through the
        archive's links (not just the text) catches chains such as ``a -> .`` plus ``b -> a/..``."""
        if target.startswith("/"):
            raise _UnsafeArchive("the code archive has a link that points out of the code: {!r} -> {!r}"
                                 .format(name, target))
        where = list(start_dir)
        for part in target.split("/"):
            self._steps += 1
            if self._steps > MAX_LINK_STEPS:
                raise _UnsafeArchive("the code archive's links take more than {} steps to check (at {!r})"
                                     .format(MAX_LINK_STEPS, name))
            if part in ("", "."):
                continue
            if part == "..":
                if not where:
                    raise _UnsafeArchive("the code archive has a link that points out of the code: {!r} -> {!r}"
                                         .format(name, target))
                where.pop()
                continue
            where.append(part)
            if len(where) > MAX_DEPTH:
                raise _UnsafeArchive("the code archive has a link that leads more than {} directories deep: {!r}"
                                     .format(MAX_DEPTH, name))
            if tuple(where) in self._links:
                where = list(self._link(tuple(where), name))
        return tuple(where)

    def _link(self, parts, name):
        if parts in self._resolved:
            return self._resolved[parts]
        if parts in self._active:
            raise _UnsafeArchive("the code archive has a link loop at {!r}".format(name))
        if len(self._active) >= MAX_NESTING:
            raise _UnsafeArchive("the code archive has links nested more than {} deep at {!r}".format(MAX_NESTING, name))
        self._active.add(parts)
        try:
            result = self.resolve(parts[:-1], self._links[parts], name)
        finally:
            self._active.discard(parts)
        self._resolved[parts] = result
        return result


def _check_members(members):
    """Refuse an archive that could write outside its tree; return ``[(member, parts)]`` to extract."""
    plan = []
    links = {}  # symlink components -> target
    for member in members:
        parts = _parts(member.name)
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise _UnsafeArchive("the code archive has a special file (device or fifo): {!r}".format(member.name))
        if not parts:
            continue  # the archive's root ("./")
        if member.issym():
            links[parts] = member.linkname
        plan.append((member, parts))
    files = set()
    resolver = _Links(links)
    for member, parts in plan:
        for i in range(1, len(parts)):
            if parts[:i] in links:  # extracting it would write through a symlink
                raise _UnsafeArchive("the code archive has {!r} below the symlink {!r}"
                                     .format(member.name, "/".join(parts[:i])))
        if member.issym():
            resolver.resolve(parts[:-1], member.linkname, member.name)
        elif member.islnk():
            target = _parts(member.linkname)
            if target not in files:  # tar only links to a file stored before the link
                raise _UnsafeArchive("the code archive has a hard link to a file outside it: {!r} -> {!r}"
                                     .format(member.name, member.linkname))
        if member.isfile() or member.islnk():
            files.add(parts)
        else:
            files.discard(parts)
    return plan


def _replace(path):
    """Make room for a new entry at ``path``: an earlier file or link of the same name goes."""
    if os.path.lexists(path) and not (os.path.isdir(path) and not os.path.islink(path)):
        os.unlink(path)


def _extract(tar, plan, root):
    for member, parts in plan:
        path = os.path.join(root, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)  # its parents are plain directories (checked)
        if member.isdir():
            _replace(path)
            os.makedirs(path, exist_ok=True)
        elif member.issym():
            _replace(path)
            os.symlink(member.linkname, path)
        elif member.islnk():  # a link to an earlier regular file of the tree (checked): no copy of its data,
            _replace(path)    # which ten links to one big file would write ten times, past the space check
            os.link(os.path.join(root, *_parts(member.linkname)), path, follow_symlinks=False)
        else:
            _replace(path)
            mode = 0o755 if member.mode & 0o111 else 0o644
            source = tar.extractfile(member)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out)
            os.utime(path, (member.mtime, member.mtime))


MIN_FREE = 256 * 1024 * 1024  # bytes that must stay free on the code's volume after extraction...
MIN_FREE_SHARE = 0.05  # ...or this share of the volume, whichever is more


def free_space(path):
    """-> (bytes available to us, bytes of the whole volume) where ``path`` lives."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize


def check_space(archive, needed, free, total, min_free=MIN_FREE, min_free_share=MIN_FREE_SHARE,
                what="code archive"):
    """Refuse an archive whose files would leave less than the margin free on the volume: ``min_free``
    bytes or ``min_free_share`` of ``total``, whichever is more."""
    margin = max(min_free, int(total * min_free_share))
    if needed > free - margin:
        raise _UnsafeArchive("the {} {} expands to {}, but its volume has {} free and {} of it must stay "
                             "free".format(what, archive, _size(needed), _size(free), _size(margin)))


def _size(n):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return "{:.1f} {}".format(n, unit) if unit != "bytes" else "{} bytes".format(n)
        n /= 1024.0


def check_directory(source, dest, space=free_space):
    """Refuse a code directory that holds anything but regular files, directories and links that
    stay inside it (a device node such as a copy of ``/dev/zero`` would be read until the volume is
    full), or whose copy (every file, hard links copied as files) would (nearly) fill ``dest``'s volume."""
    top = os.path.realpath(source)
    needed = 0
    for dirpath, dirnames, filenames in os.walk(source):  # links to directories are not followed
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            shown = os.path.relpath(path, source)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(path)
                if real != top and not real.startswith(top + os.sep):
                    raise _UnsafeArchive("the code directory {} has a link that points out of it: {!r} -> {!r}"
                                         .format(source, shown, os.readlink(path)))
            elif stat.S_ISREG(st.st_mode):
                needed += st.st_size
            elif not stat.S_ISDIR(st.st_mode):
                raise _UnsafeArchive("the code directory {} has a special file (device, fifo or socket): {!r}"
                                     .format(source, shown))
    check_space(source, needed, *space(os.path.realpath(dest)), what="code directory")


def extract_tarball(archive, dest, space=free_space, min_free=MIN_FREE, min_free_share=MIN_FREE_SHARE):
    """Extract ``archive`` into the empty directory ``dest``.

    Refuses (``CodeDownloadError``) absolute paths, ``..``, links that lead out of the tree, files
    below a link, device files, and an archive that would (nearly) fill the volume (``space(dest)``
    gives the free and total bytes; ``min_free`` and ``min_free_share`` the margin, see ``check_space``);
    nothing is written through a link."""
    root = os.path.realpath(dest)
    try:
        with tarfile.open(archive, "r:*") as tar:
            plan = _check_members(tar.getmembers())
            check_space(archive, sum(m.size for m, _parts in plan if m.isfile()), *space(root),
                        min_free=min_free, min_free_share=min_free_share)
            _extract(tar, plan, root)
    except CodeDownloadError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError) as e:
        raise CodeDownloadError("cannot read the code archive {}: {}".format(archive, e)) from e
