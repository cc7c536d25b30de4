"""Local files, written atomically so a reader never sees half a file.

Only regular files are read: a FIFO would block the worker forever and a
device such as /dev/zero never ends, so both are refused before any read.
Every path is first held to FILESYSTEM_ROOTS when it is set
(``spacer.storage.confinement``), and then used as it was checked, never
resolved again (``spacer.storage.no_follow``); ``confined=False`` is only
for the worker's own folders (a cache folder it created itself).
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from io import BytesIO
from typing import NoReturn

from spacer.exceptions import MessageError
from spacer.storage import no_follow
from spacer.storage.backend import Storage
from spacer.storage.confinement import confine, resolve_confined
from spacer.storage.shown_paths import shown_path

# OS errors that say the path itself is malformed, not that the file is
# missing or locked: reported as MessageError so a worker sees bad input.
_BAD_PATH_ERRNOS = {
    errno.ENAMETOOLONG: 'is too long for the filesystem',
    errno.ELOOP: 'has too many levels of symbolic links',
}

_KIND_NAMES = (
    (stat.S_ISFIFO, 'a FIFO (named pipe)'),
    (stat.S_ISCHR, 'a character device'),
    (stat.S_ISBLK, 'a block device'),
    (stat.S_ISSOCK, 'a socket'),
)


def _path_error(path: str, err: OSError | ValueError) -> Exception:
    """The error to raise for err: a MessageError naming the path when the
    path is malformed, else err itself (FileNotFoundError & co. already name
    it, and callers catch those types)."""
    if isinstance(err, ValueError):  # e.g. an embedded null byte
        return MessageError(f"Filesystem path {shown_path(path)} is not a valid path: {err}.")
    why = _BAD_PATH_ERRNOS.get(err.errno)
    if why:
        return MessageError(f"Filesystem path {shown_path(path)} {why} ({err.strerror}).")
    return err


def _raise_path_error(path: str, err: OSError | ValueError) -> NoReturn:
    translated = _path_error(path, err)
    if translated is err:
        raise err
    raise translated from err


def _require_regular(path: str, st: os.stat_result, action: str = 'read') -> None:
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    kind = next((name for test, name in _KIND_NAMES if test(st.st_mode)), 'a special file')
    raise MessageError(
        f"Filesystem path {shown_path(path)} is {kind}, not a regular file;"
        f" only regular files can be {action}.")


def check_regular_file(path: str | os.PathLike, confined: bool = True) -> None:
    """Raise unless path (symlinks followed) is a regular file; never opens it,
    so a FIFO cannot block. Missing files raise FileNotFoundError; a path
    outside FILESYSTEM_ROOTS raises PathOutsideRootsError."""
    if confined:
        confine(path, 'read')
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except (OSError, ValueError) as e:
        _raise_path_error(path, e)
    _require_regular(path, st)


_READ_FLAGS = os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0) | getattr(os, 'O_CLOEXEC', 0)


def _checked_folder(path: str, action: str) -> tuple[str, str] | None:
    """(resolved folder, file name) of a path whose folder FILESYSTEM_ROOTS
    allows, to use through ``no_follow``; None when unconfined (or where
    ``no_follow`` is not available): use the path by name."""
    if not no_follow.AVAILABLE:
        return None
    absolute = os.path.abspath(path)
    folder = resolve_confined(os.path.dirname(absolute), action)
    return None if folder is None else (folder, os.path.basename(absolute))


def read_regular_file(path: str, confined: bool = True) -> bytes:
    """The whole content of the regular file at path.

    Checked before opening, and again on the opened descriptor (the path may
    have been swapped meanwhile); the open is non-blocking so even a FIFO that
    slipped in between cannot hang the reader. Under FILESYSTEM_ROOTS the
    file opened is the one checked (``no_follow``).
    """
    resolved = resolve_confined(path, 'read') if confined else None
    try:
        if resolved is not None and no_follow.AVAILABLE:
            fd = no_follow.open_file(resolved, path, _READ_FLAGS)
        else:
            check_regular_file(path, confined=False)
            fd = os.open(path, _READ_FLAGS)
    except (OSError, ValueError) as e:
        _raise_path_error(path, e)
    try:
        _require_regular(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, 'rb') as f:
        return f.read()


def write_atomically(path: str, data: bytes | memoryview, confined: bool = True) -> None:
    """Write to a temporary file beside path, then rename it into place.

    An interrupted write leaves the old content (or nothing), never a torn
    file; a symlink at path is replaced, never written through.
    """
    _write_checked(path, data, _confined_write_target(path) if confined else None)


def _confined_write_target(path: str) -> tuple[str, str] | None:
    """Check a path to be written against FILESYSTEM_ROOTS: a symlink at
    path that leads outside is refused, and so is a folder outside. What
    ``_checked_folder`` gives, for ``_write_checked``."""
    confine(path, 'write')
    return _checked_folder(path, 'write')


def _write_checked(path: str, data: bytes | memoryview,
                   checked: tuple[str, str] | None) -> None:
    """``write_atomically`` once path has been checked: through ``no_follow``
    when a checked folder is given, else by name."""
    if checked is not None:
        no_follow.replace_file(*checked, path, data)
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix='.tmp-', suffix='.part')
    try:
        with os.fdopen(fd, 'wb') as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise


def _check_store_target(path: str) -> None:
    """A store may create or replace a regular file, never a device or FIFO
    (the rename would replace e.g. /dev/null itself)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except (OSError, ValueError) as e:
        _raise_path_error(path, e)
    if not stat.S_ISREG(st.st_mode):
        _require_regular(path, st, 'written (a store replaces the file)')


class FileSystemStorage(Storage):
    """Keys are file paths, held to FILESYSTEM_ROOTS when it is set (unless
    ``confined=False``: the worker's own cache folders)."""

    def __init__(self, confined: bool = True):
        self.confined = confined

    def _confine(self, key: str, action: str) -> None:
        if self.confined:
            confine(key, action)

    def store(self, key: str, stream: BytesIO) -> None:
        checked = _confined_write_target(key) if self.confined else None
        _check_store_target(key)
        data = stream.getbuffer()
        try:
            _write_checked(key, data, checked)
        except (OSError, ValueError) as e:
            _raise_path_error(key, e)

    def load(self, key: str) -> BytesIO:
        return BytesIO(read_regular_file(key, self.confined))

    def delete(self, key: str) -> None:
        self._confine(key, 'delete')
        checked = _checked_folder(key, 'delete') if self.confined else None
        try:
            if checked is not None:
                no_follow.remove_file(*checked, key)
            else:
                os.remove(key)
        except (OSError, ValueError) as e:
            _raise_path_error(key, e)

    def exists(self, key: str) -> bool:
        self._confine(key, 'existence test')
        return os.path.exists(key)
