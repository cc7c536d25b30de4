"""Local copies of remote extractor files (network weights)."""
from __future__ import annotations

from pathlib import Path

from spacer import config
from spacer.exceptions import ConfigError
from spacer.storage.cache_names import cache_file_name
from spacer.storage.factory import storage_for
from spacer.storage.filesystem import check_regular_file, write_atomically


def cache_dir() -> Path:
    directory = config.get('EXTRACTORS_CACHE_DIR')
    if not directory:
        raise ConfigError("Must define EXTRACTORS_CACHE_DIR"
                          " to load extractor files/blobs into the filesystem.")
    return Path(directory)


def cached_file_path(loc) -> Path:
    """Where loc's copy lives: its file name prefixed by a digest of the whole
    location, so two sources with the same file name never collide and no key
    reaches outside the cache folder."""
    return cache_dir() / cache_file_name(loc.serialize(), loc.key)


def cached_path(loc) -> tuple[Path, bool]:
    """A local path holding loc's bytes, and whether they were downloaded now."""
    if loc.storage_type == 'filesystem':
        check_regular_file(loc.key)  # a FIFO or device would block or never end
        return Path(loc.key), False
    path = cached_file_path(loc)
    if path.exists():
        return path, False
    data = storage_for(loc).load(loc.key)
    write_atomically(str(path), data.getbuffer())
    return path, loc.is_remote


def evict(loc) -> None:
    """Drop loc's cached copy (e.g. after a hash mismatch)."""
    if loc.storage_type == 'filesystem':
        return
    cached_file_path(loc).unlink(missing_ok=True)
