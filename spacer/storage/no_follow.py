"""
Use a checked path without following any symlink, so the file checked
against FILESYSTEM_ROOTS is the file used.

``confinement.confine`` resolves a path and checks where it leads; opening
the path by name afterwards would resolve it a second time. A local user who
can write inside a root could swap a folder on the path for a symlink in
between and send the read or write elsewhere. Here the resolved path (which
holds no symlink) is walked one folder at a time from ``/`` with
``O_NOFOLLOW``, each step relative to the descriptor of the one before, and
the file is opened, created, renamed or removed relative to the last
folder's descriptor. A symlink that appeared meanwhile makes a step fail,
and the use is refused naming the setting; nothing outside is touched.

Needs ``O_PATH`` and the ``*at`` system calls (Linux); elsewhere
``AVAILABLE`` is False and callers use the path as checked.
"""
from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from spacer.storage.confinement import SETTING, PathOutsideRootsError
from spacer.storage.shown_paths import shown_path

AVAILABLE = (hasattr(os, 'O_PATH') and os.open in os.supports_dir_fd
             and os.mkdir in os.supports_dir_fd and os.rename in os.supports_dir_fd)
# A folder reached without following a symlink; O_PATH needs no read
# permission, only search, as resolving the path by name would.
_FOLDER_FLAGS = (getattr(os, 'O_PATH', 0) | os.O_DIRECTORY | getattr(os, 'O_NOFOLLOW', 0)
                 | getattr(os, 'O_CLOEXEC', 0))
_NO_FOLLOW = getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_CLOEXEC', 0)
# What opening a name that is now a symlink gives with O_NOFOLLOW.
_SWAPPED_ERRNOS = (errno.ELOOP, errno.ENOTDIR)


def _swapped(path: str, action: str) -> PathOutsideRootsError:
    return PathOutsideRootsError(
        f"Filesystem path {shown_path(path)} changed while in use (a symbolic link appeared"
        f" on it after it was checked against {SETTING}); refused before any {action}.")


@contextmanager
def folder(resolved: str, path: str, action: str, create: bool = False) -> Iterator[int]:
    """A descriptor of the folder ``resolved`` (absolute, symlink-free),
    reached one name at a time with O_NOFOLLOW; missing folders are made
    when ``create``. ``path`` (as the caller gave it) and ``action`` only
    word the errors: FileNotFoundError when a folder is missing, else
    PathOutsideRootsError when a name on the way is now a symlink."""
    fd = os.open(os.sep, _FOLDER_FLAGS)
    try:
        for name in resolved.split(os.sep):
            if not name:
                continue
            try:
                step = _open_step(name, fd, path, action)
            except FileNotFoundError:
                if not create:
                    raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT),
                                            path) from None
                try:
                    os.mkdir(name, dir_fd=fd)
                except FileExistsError:  # made meanwhile: opened (and checked) below
                    pass
                step = _open_step(name, fd, path, action)
            os.close(fd)
            fd = step
        yield fd
    finally:
        os.close(fd)


def _open_step(name: str, fd: int, path: str, action: str) -> int:
    try:
        return os.open(name, _FOLDER_FLAGS, dir_fd=fd)
    except OSError as e:
        if e.errno in _SWAPPED_ERRNOS:
            raise _swapped(path, action) from None
        raise


def open_file(resolved: str, path: str, flags: int) -> int:
    """A descriptor of the file ``resolved`` (symlink-free), opened with
    ``flags`` and O_NOFOLLOW relative to its folder's descriptor."""
    parent, name = os.path.split(resolved)
    with folder(parent, path, 'read') as parent_fd:
        try:
            return os.open(name, flags | _NO_FOLLOW, dir_fd=parent_fd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _swapped(path, 'read') from None
            if isinstance(e, FileNotFoundError):
                raise FileNotFoundError(e.errno, e.strerror, path) from None
            raise


def replace_file(resolved_folder: str, name: str, path: str, data: bytes | memoryview) -> None:
    """Write ``data`` to a new file in ``resolved_folder`` (made if missing),
    then rename it over ``name`` there: what ``write_atomically`` does, with
    every step relative to the folder's descriptor."""
    with folder(resolved_folder, path, 'write', create=True) as parent_fd:
        temporary = f'.tmp-{secrets.token_hex(8)}.part'
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW, 0o600,
                     dir_fd=parent_fd)
        try:
            with os.fdopen(fd, 'wb') as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        except BaseException:
            try:
                os.unlink(temporary, dir_fd=parent_fd)
            except FileNotFoundError:
                pass
            raise


def remove_file(resolved_folder: str, name: str, path: str) -> None:
    """Remove ``name`` (a symlink itself, never its target) from the folder."""
    with folder(resolved_folder, path, 'delete') as parent_fd:
        try:
            os.unlink(name, dir_fd=parent_fd)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path) from None
