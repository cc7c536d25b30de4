"""Local copies of remote extractor files (network weights)."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from spacer import config
from spacer.exceptions import ConfigError
from spacer.storage.factory import storage_for
from spacer.storage.filesystem import write_atomically


def cache_dir() -> Path:
    directory = config.get('EXTRACTORS_CACHE_DIR')
    if not directory:
        raise ConfigError("Must define EXTRACTORS_CACHE_DIR"
                          " to load extractor files/blobs into the filesystem.")
    return Path(directory)


def cached_file_path(loc) -> Path:
    """Where loc's copy lives: its file name prefixed by a digest of the whole
    location, so two sources with the same file name never collide."""
    digest = hashlib.sha256(
        json.dumps(loc.serialize(), sort_keys=True).encode()).hexdigest()[:16]
    name = re.sub(r'[^A-Za-z0-9._-]', '_', loc.filename) or 'data'
    return cache_dir() / f'{digest}-{name}'


def cached_path(loc) -> tuple[Path, bool]:
    """A local path holding loc's bytes, and whether they were downloaded now."""
    if loc.storage_type == 'filesystem':
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
