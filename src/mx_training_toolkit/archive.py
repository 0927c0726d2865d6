"""Safe extraction of the user's code archive: nothing lands outside the code tree.

Every member is checked against the archive's own links before anything is written; nothing is
ever written through a link; hard links must point to an earlier regular file of the archive;
device files and FIFOs are refused; setuid bits are dropped.
"""

import lzma
import os
import shutil
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


def _resolve(start_dir, target, links, name, depth=0):
    """Follow the link ``target`` from ``start_dir`` (components) through the archive's own links.

    Returns the components it ends at; raises if any step leaves the tree. Resolving through the
    archive's links (not just the text) catches chains such as ``a -> .`` plus ``b -> a/..``."""
    if depth > 40:
        raise _UnsafeArchive("the code archive has a link loop at {!r}".format(name))
    if target.startswith("/"):
        raise _UnsafeArchive("the code archive has a link that points out of the code: {!r} -> {!r}"
                             .format(name, target))
    where = list(start_dir)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not where:
                raise _UnsafeArchive("the code archive has a link that points out of the code: {!r} -> {!r}"
                                     .format(name, target))
            where.pop()
            continue
        where.append(part)
        inner = links.get(tuple(where))
        if inner is not None:
            where = list(_resolve(where[:-1], inner, links, name, depth + 1))
    return tuple(where)


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
    for member, parts in plan:
        for i in range(1, len(parts)):
            if parts[:i] in links:  # extracting it would write through a symlink
                raise _UnsafeArchive("the code archive has {!r} below the symlink {!r}"
                                     .format(member.name, "/".join(parts[:i])))
        if member.issym():
            _resolve(parts[:-1], member.linkname, links, member.name)
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
        else:  # a file, or a hard link (the data of the earlier file it names)
            _replace(path)
            mode = 0o755 if member.mode & 0o111 else 0o644
            source = tar.extractfile(member)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out)
            os.utime(path, (member.mtime, member.mtime))


def extract_tarball(archive, dest):
    """Extract ``archive`` into the empty directory ``dest``.

    Refuses (``CodeDownloadError``) absolute paths, ``..``, links that lead out of the tree, files
    below a link, and device files; nothing is written through a link."""
    root = os.path.realpath(dest)
    try:
        with tarfile.open(archive, "r:*") as tar:
            plan = _check_members(tar.getmembers())
            _extract(tar, plan, root)
    except CodeDownloadError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError) as e:
        raise CodeDownloadError("cannot read the code archive {}: {}".format(archive, e)) from e
