"""Pick the backend a DataLocation names."""
from __future__ import annotations

import threading

from spacer.exceptions import MessageError
from spacer.storage.base import Storage
from spacer.storage.filesystem import FileSystemStorage
from spacer.storage.memory import MemoryStorage
from spacer.storage.s3 import S3Storage
from spacer.storage.url import URLStorage

STORAGE_TYPES = ('s3', 'filesystem', 'memory', 'url')

_memory: MemoryStorage | None = None
_memory_lock = threading.Lock()


def clear_memory_storage() -> None:
    """Forget every blob of the process-wide memory storage."""
    global _memory
    with _memory_lock:
        _memory = None


def _memory_storage() -> MemoryStorage:
    global _memory
    with _memory_lock:
        if _memory is None:
            _memory = MemoryStorage()
        return _memory


def storage_factory(storage_type: str, bucket_name: str | None = None) -> Storage:
    if storage_type == 's3':
        if not bucket_name or not isinstance(bucket_name, str):
            raise MessageError(
                f"s3 storage needs a bucket_name string, got {bucket_name!r}.")
        return S3Storage(bucket_name=bucket_name)
    if storage_type == 'filesystem':
        return FileSystemStorage()
    if storage_type == 'memory':
        return _memory_storage()
    if storage_type == 'url':
        return URLStorage()
    raise MessageError(
        f"Unknown storage_type {storage_type!r}; expected one of {', '.join(STORAGE_TYPES)}.")


def storage_for(loc) -> Storage:
    """The backend of a DataLocation."""
    return storage_factory(loc.storage_type, loc.bucket_name)
