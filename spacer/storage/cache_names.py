"""File names of local copies of remote data: one path component per location."""
from __future__ import annotations

import hashlib
import json
import re

# Longest file-name tail kept in a cache file's name (the digest prefix makes
# the name unique; the tail only helps a human reading the folder).
_TAIL_CHARS = 100


def location_tail(key: str) -> str:
    """The last path segment of key (a URL's query and fragment dropped),
    made safe for a file name; never parses the key, so any key works."""
    path = key.split('#', 1)[0].split('?', 1)[0].rstrip('/')
    tail = re.sub(r'[^A-Za-z0-9._-]', '_', path.rsplit('/', 1)[-1])
    return tail[-_TAIL_CHARS:] or 'data'


def cache_file_name(identity: dict, key: str) -> str:
    """A single path component naming a cached copy of the data at identity.

    A digest of the whole location leads the name, so no key can climb out of
    the cache folder (``..``), name a file outside it, or collide with another
    location that shares its file name.
    """
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:32]
    return f'{digest}-{location_tail(key)}'
