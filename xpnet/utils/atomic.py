"""Safe file access: atomic writes, and reads of regular files only.

Every file xpnet writes (models, checkpoints, histories, result files, downloads) goes through
:func:`atomic_write`: the bytes go to a temporary file in the target's folder (``.NAME.XXXXXXXX.tmp``),
are flushed and fsynced, and the temporary file is renamed onto the target. A failure at any point
(a full disk, an exception inside the ``with`` block, a signal) leaves the previous file untouched and
removes the temporary file; a process killed while writing leaves its temporary file behind, which
:func:`remove_leftovers` clears (for a run checkpoint, only the holder of the path's lock calls it).
Written files get the usual permissions, ``0666 & ~umask`` (0644 under umask 022), not ``mkstemp``'s
0600. Only regular files are replaced: a folder, named pipe, socket or device at the target path is
refused with a ``ValueError``.

Usage (a download streams into it; raising inside the block discards what was written)::

    with atomic_write(target) as f:          # mode="wb" by default; "w" for text
        for chunk in response:
            f.write(chunk)
        if digest.hexdigest() != expected:
            raise ValueError("checksum mismatch")   # target unchanged, temporary file removed

:func:`open_regular` opens a file for reading only if it is a regular file (a named pipe is refused at
once instead of blocking forever).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pathlib
import re
import stat
import tempfile
from collections.abc import Iterator
from typing import IO, Any

__all__ = [
    "atomic_write",
    "check_writable",
    "file_mode",
    "leftovers",
    "open_regular",
    "remove_leftovers",
    "write_bytes",
    "write_text",
]

SUFFIX = ".tmp"
_RANDOM = r"[a-z0-9_]{8}"  # tempfile's names: 8 characters of "abcdefghijklmnopqrstuvwxyz0123456789_"


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def umask() -> int:
    """The process's umask (read from ``/proc`` where it can be: setting it to read it is racy)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The permissions of a newly written file: ``0666 & ~umask``."""
    return 0o666 & ~umask()


def check_writable(path: str | os.PathLike) -> pathlib.Path:
    """``path`` as a ``Path`` whose folder exists and which is absent or a regular file (a folder,
    pipe, socket or device there is a ``ValueError``; a missing folder a ``FileNotFoundError``)."""
    path = pathlib.Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as e:  # e.g. a component that is a file, a permission problem
        raise OSError(e.errno, f"{path}: {e.strerror}") from e
    if mode is not None and not stat.S_ISREG(mode):
        raise ValueError(f"{path}: is {_kind(mode)}; xpnet writes only regular files")
    if not path.parent.is_dir():  # else the error would name the temporary file
        raise FileNotFoundError(f"{path}: the folder {str(path.parent)!r} does not exist")
    return path


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", *, encoding: str | None = None, newline: str | None = None
) -> Iterator[IO[Any]]:
    """A file object whose content replaces ``path`` atomically when the block ends without an error.

    ``mode``: ``"wb"`` (default) or ``"w"`` (text; ``encoding`` default UTF-8). See the module docs."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = check_writable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=SUFFIX)
    try:
        if hasattr(os, "fchmod"):  # POSIX (mkstemp made it 0600)
            os.fchmod(fd, file_mode())
        binary = mode == "wb"
        with os.fdopen(fd, mode, encoding=None if binary else encoding or "utf-8", newline=newline) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        check_writable(path)  # a pipe or device put there meanwhile is not replaced either
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a crash (where the OS allows)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def write_text(path: str | os.PathLike, text: str) -> None:
    """``path.write_text(text)`` atomically (UTF-8), with the usual permissions."""
    with atomic_write(path, "w") as f:
        f.write(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """``path.write_bytes(data)`` atomically, with the usual permissions."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def leftovers(path: str | os.PathLike) -> list[pathlib.Path]:
    """Temporary files that writers of ``path`` left behind (killed while writing): exactly the names
    :func:`atomic_write` makes for ``path`` (the name is escaped: never a glob pattern)."""
    path = pathlib.Path(path)
    prefix = f".{path.name}."
    pattern = re.compile(re.escape(prefix) + _RANDOM + re.escape(SUFFIX))
    return [p for p in path.parent.glob(glob.escape(prefix) + "*" + SUFFIX) if pattern.fullmatch(p.name)]


def remove_leftovers(path: str | os.PathLike) -> None:
    """Remove :func:`leftovers` of ``path``. Call it only while holding the path's lock (a writer's
    in-flight temporary file looks the same as a dead writer's)."""
    for p in leftovers(path):
        p.unlink(missing_ok=True)


def open_regular(path: str | os.PathLike) -> IO[bytes]:
    """``open(path, "rb")`` for a regular file; anything else (a named pipe, device, folder) is a
    ``ValueError`` at once, never a read that blocks. ``FileNotFoundError`` as it is."""
    path = pathlib.Path(path)
    nonblocking = getattr(os, "O_NONBLOCK", 0)  # opening a pipe does not wait for a writer
    fd = os.open(path, os.O_RDONLY | nonblocking | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path}: is {_kind(mode)}; xpnet reads only regular files")
        if nonblocking:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
