"""Pick the backend a DataLocation names: one alias table, one lookup."""
from __future__ import annotations

import threading
from typing import Callable

from spacer.exceptions import MessageError
from spacer.storage.backend import Storage
from spacer.storage.filesystem import FileSystemStorage
from spacer.storage.memory import MemoryStorage
from spacer.storage.s3 import S3Storage
from spacer.storage.url import URLStorage

# The process-wide memory storage (spacer.process_state lists it).
_memory: MemoryStorage | None = None
_memory_lock = threading.Lock()


def clear_memory_storage() -> None:
    """Forget every blob of the process-wide memory storage."""
    global _memory
    with _memory_lock:
        _memory = None


def _memory_storage(bucket_name: str | None = None) -> MemoryStorage:
    global _memory
    with _memory_lock:
        if _memory is None:
            _memory = MemoryStorage()
        return _memory


def _s3_storage(bucket_name: str | None) -> S3Storage:
    if not bucket_name or not isinstance(bucket_name, str):
        raise MessageError(
            f"s3 storage needs a bucket_name string, got {bucket_name!r}.")
    return S3Storage(bucket_name=bucket_name)


# storage_type -> its backend, given the location's bucket_name. The one list
# of storage types: DataLocation validates against it too.
_BACKENDS: dict[str, Callable[[str | None], Storage]] = {
    's3': _s3_storage,
    'filesystem': lambda bucket_name: FileSystemStorage(),
    'memory': _memory_storage,
    'url': lambda bucket_name: URLStorage(),
}
STORAGE_TYPES: tuple[str, ...] = tuple(_BACKENDS)


def storage_factory(storage_type: str, bucket_name: str | None = None) -> Storage:
    """pyspacer's name: the backend of a storage type (and s3 bucket)."""
    try:
        backend = _BACKENDS[storage_type]
    except (KeyError, TypeError):
        raise MessageError(
            f"Unknown storage_type {storage_type!r}; expected one of"
            f" {', '.join(STORAGE_TYPES)}.") from None
    return backend(bucket_name)


def storage_for(loc) -> Storage:
    """The backend of a DataLocation."""
    return storage_factory(loc.storage_type, loc.bucket_name)
