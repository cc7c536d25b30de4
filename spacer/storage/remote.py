"""Backends behind the network (s3, url), whose loads may go through a
local file cache."""
from __future__ import annotations

import abc
import os
from io import BytesIO

from spacer.storage.backend import Storage
from spacer.storage.cache_names import cache_file_name
from spacer.storage.filesystem import FileSystemStorage


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
