"""
Which local paths ``filesystem`` locations may use (setting FILESYSTEM_ROOTS).

Whoever can put a message on a queue chooses the paths a worker reads and
writes. With roots set, every filesystem read, write, delete and existence
test first resolves the path (``..`` and every symlink on the way, the file
itself included) and refuses, before any I/O on it, a path that does not
resolve inside a root. EXTRACTORS_CACHE_DIR, the worker's own folder, is
allowed implicitly.

Writes never go through a symlink at the destination: a link that resolves
outside the roots is refused by the check, and one that resolves inside is
replaced by the atomic rename (``write_atomically``), never written through.

The storage then uses the path as it was checked, one folder at a time
without following symlinks (``spacer.storage.no_follow``): a folder swapped
for a symlink between the check and the use is refused, not followed.

With no roots set nothing is refused (pyspacer's behaviour, for library
use); ``spacer worker`` refuses to start that way unless told
``--unconfined``.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

from spacer import config
from spacer.exceptions import ConfigError, SpacerError
from spacer.storage.shown_paths import shown_path

SETTING = 'FILESYSTEM_ROOTS'


class PathOutsideRootsError(SpacerError, PermissionError):
    """A filesystem location resolves outside FILESYSTEM_ROOTS: bad input
    (a SpacerError), and a PermissionError for callers that catch those."""

    def __init__(self, message: str):
        # One argument, so str() is the message (not OSError's errno form).
        super().__init__(message)


def parse_roots(value: str | None) -> tuple[str, ...]:
    """The roots named by a FILESYSTEM_ROOTS value: absolute folders
    separated by os.pathsep. A relative one is a ConfigError (it would
    depend on the worker's current folder)."""
    if not value:
        return ()
    roots = []
    for part in str(value).split(os.pathsep):
        part = part.strip()
        if not part:
            continue
        if not os.path.isabs(part):
            raise ConfigError(
                f"{SETTING} must list absolute folders separated by {os.pathsep!r};"
                f" {part!r} is relative.")
        roots.append(part)
    return tuple(roots)


def configured_roots() -> tuple[str, ...]:
    """FILESYSTEM_ROOTS as set now (no implicit folders)."""
    return parse_roots(config.get(SETTING))


def allowed_folders() -> tuple[str, ...]:
    """The resolved folders paths may resolve into: the roots, plus
    EXTRACTORS_CACHE_DIR when roots are set; () when unconfined."""
    roots = configured_roots()
    if not roots:
        return ()
    cache_dir = config.get('EXTRACTORS_CACHE_DIR')
    if cache_dir:
        roots += (os.path.abspath(cache_dir),)
    return tuple(os.path.realpath(root) for root in roots)


def is_confined() -> bool:
    return bool(configured_roots())


def _inside(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([path, folder]) == folder
    except ValueError:  # different drives (Windows)
        return False


def confine(path: str | os.PathLike, action: str = 'read') -> str:
    """``path`` (as given) when it may be used; PathOutsideRootsError, naming
    the setting, when roots are set and the path resolves outside them.

    Only the path is resolved (no file is opened); a missing file or folder
    is resolved as far as it exists, so a write that will create folders is
    checked too. ``action`` only words the error.
    """
    resolve_confined(path, action)
    return path


def resolve_confined(path: str | os.PathLike, action: str = 'read') -> str | None:
    """What ``confine`` checks: the resolved path (no symlink left on it)
    when roots are set and it lies inside them, None when unconfined;
    PathOutsideRootsError otherwise. ``spacer.storage.no_follow`` then uses
    the resolved path without resolving it again."""
    folders = allowed_folders()
    if not folders:
        return None
    try:
        text = os.fsdecode(os.fspath(path))
        if '\0' in text:
            raise ValueError('embedded null byte')
        resolved = os.path.realpath(os.path.abspath(text))
    except (TypeError, ValueError) as e:
        raise PathOutsideRootsError(
            f"Filesystem path {shown_path(str(path))} cannot be checked against {SETTING}"
            f" ({type(e).__name__}); refused before any {action}.") from None
    if any(_inside(resolved, folder) for folder in folders):
        return resolved
    raise PathOutsideRootsError(
        f"Filesystem path {shown_path(text)} resolves outside the folders {SETTING} allows"
        f" (symlinks and '..' followed); refused before any {action}.")


_LOCATION_FIELDS = ('image_loc', 'feature_loc', 'classifier_loc', 'model_loc', 'valresult_loc')


def _message_locations(msg: object) -> Iterator[tuple[str, object]]:
    """(field, DataLocation) of every location a task message names."""
    for field in _LOCATION_FIELDS:
        loc = getattr(msg, field, None)
        if loc is not None:
            yield field, loc
    for i, loc in enumerate(getattr(msg, 'previous_model_locs', None) or ()):
        yield f'previous_model_locs[{i}]', loc
    extractor = getattr(msg, 'extractor', None)
    for key, loc in (getattr(extractor, 'data_locations', None) or {}).items():
        yield f'extractor.data_locations[{key!r}]', loc
    labels = getattr(msg, 'labels', None)
    for name in getattr(labels, 'SETS', ()):
        for loc in labels[name].keys():
            yield f'labels.{name}', loc


def confine_message(msg: object) -> None:
    """Check every filesystem location of a task message (inputs, outputs,
    extractor files, feature_cache_dir) before the task reads anything, so
    a message naming one path outside FILESYSTEM_ROOTS does no I/O at all."""
    if not allowed_folders():
        return
    for field, loc in _message_locations(msg):
        if getattr(loc, 'storage_type', None) == 'filesystem':
            try:
                confine(loc.key, 'use')
            except PathOutsideRootsError as e:
                raise PathOutsideRootsError(f"{type(msg).__name__}.{field}: {e}") from None
    folder = getattr(msg, 'feature_cache_dir', None)
    if isinstance(folder, (str, os.PathLike)) and str(folder) not in ('auto', 'disabled'):
        try:
            confine(str(folder), 'write')
        except PathOutsideRootsError as e:
            raise PathOutsideRootsError(
                f"{type(msg).__name__}.feature_cache_dir: {e}") from None


def check_roots_exist(roots: tuple[str, ...]) -> None:
    """ConfigError naming the first root that is not an existing folder
    (a typo would otherwise refuse every task)."""
    for root in roots:
        if not os.path.isdir(root):
            raise ConfigError(f"{SETTING} names {root!r}, which is not an existing folder.")
