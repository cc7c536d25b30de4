"""A process-wide dict of blobs: for tests and the embedded worker."""
from __future__ import annotations

import threading
from io import BytesIO

from spacer.storage.backend import Storage


class MemoryStorage(Storage):
    """Blobs in RAM; bytes are immutable, so readers never see half a write."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def store(self, key: str, stream: BytesIO) -> None:
        data = stream.getvalue()
        with self._lock:
            self.blobs[key] = data

    def load(self, key: str) -> BytesIO:
        try:
            return BytesIO(self.blobs[key])
        except KeyError:
            raise KeyError(f"Memory storage has no key {key!r}.") from None

    def delete(self, key: str) -> None:
        with self._lock:
            del self.blobs[key]

    def exists(self, key: str) -> bool:
        return key in self.blobs
