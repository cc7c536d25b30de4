"""The storage interface: bytes in and out by key."""
from __future__ import annotations

import abc
import hashlib
import json
import os
import re
from io import BytesIO

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


class Storage(abc.ABC):
    """One backend: a flat namespace of keys holding bytes."""

    @abc.abstractmethod
    def store(self, key: str, stream: BytesIO) -> None:
        """Write the stream's whole content under key, atomically."""

    @abc.abstractmethod
    def load(self, key: str) -> BytesIO:
        """The bytes under key; FileNotFoundError/KeyError when absent."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove key."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether key holds data."""


class RemoteStorage(Storage):
    """A backend behind the network; loads may go through a local file cache."""

    storage_type: str = 'remote'
    bucket_name: str | None = None

    def cache_identity(self, key: str) -> dict:
        """What names key's data: the same dict as DataLocation.serialize()."""
        return {'storage_type': self.storage_type, 'key': key,
                'bucket_name': self.bucket_name}

    def cache_path(self, filesystem_cache: str, key: str) -> str:
        """Where key's copy lives: always directly inside filesystem_cache."""
        return os.path.join(filesystem_cache, cache_file_name(self.cache_identity(key), key))

    def load(self, key: str, filesystem_cache: str | None = None) -> BytesIO:
        if not filesystem_cache:
            return self._load_remote(key)
        from spacer.storage.filesystem import FileSystemStorage
        # The cache folder is the worker's own (a temporary folder, under a
        # feature_cache_dir already held to FILESYSTEM_ROOTS by the task) and
        # the copy's name a single component, so no root check here.
        local = FileSystemStorage(confined=False)
        cache_path = self.cache_path(filesystem_cache, key)
        if local.exists(cache_path):
            return local.load(cache_path)
        stream = self._load_remote(key)
        local.store(cache_path, stream)
        stream.seek(0)
        return stream

    @abc.abstractmethod
    def _load_remote(self, key: str) -> BytesIO:
        """Fetch key over the network."""
