"""The storage interface: bytes in and out by key."""
from __future__ import annotations

import abc
from io import BytesIO
from pathlib import Path


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

    def load(self, key: str, filesystem_cache: str | None = None) -> BytesIO:
        if not filesystem_cache:
            return self._load_remote(key)
        from spacer.storage.filesystem import FileSystemStorage
        local = FileSystemStorage()
        cache_path = str(Path(filesystem_cache, key.lstrip('/')))
        if local.exists(cache_path):
            return local.load(cache_path)
        stream = self._load_remote(key)
        local.store(cache_path, stream)
        stream.seek(0)
        return stream

    @abc.abstractmethod
    def _load_remote(self, key: str) -> BytesIO:
        """Fetch key over the network."""
