"""Local files, written atomically so a reader never sees half a file."""
from __future__ import annotations

import os
import tempfile
from io import BytesIO

from spacer.storage.base import Storage


def write_atomically(path: str, data: bytes | memoryview) -> None:
    """Write to a temporary file beside path, then rename it into place.

    An interrupted write leaves the old content (or nothing), never a torn file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix='.tmp-', suffix='.part')
    try:
        with os.fdopen(fd, 'wb') as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise


class FileSystemStorage(Storage):
    """Keys are file paths."""

    def store(self, key: str, stream: BytesIO) -> None:
        write_atomically(key, stream.getbuffer())

    def load(self, key: str) -> BytesIO:
        with open(key, 'rb') as f:
            return BytesIO(f.read())

    def delete(self, key: str) -> None:
        os.remove(key)

    def exists(self, key: str) -> bool:
        return os.path.exists(key)
