"""
An extractor's data files (weights, network definitions): where their bytes
are, what their sha256 is, and whether they match ``data_hashes``.

Remote files (s3, url) are downloaded once into ``EXTRACTORS_CACHE_DIR`` by
the storage layer's cache. Digests of local files are remembered by
(path, size, mtime), so a warm worker does not re-hash a 20 MB weights file
for every image.
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from io import BytesIO
from pathlib import Path

from spacer.data_classes import DataLocation
from spacer.exceptions import HashMismatchError, SpacerError
from spacer.storage.cache import cached_path, evict
from spacer.storage.factory import storage_for
from spacer.storage.filesystem import check_regular_file, read_regular_file


class WeightsFormatError(SpacerError, ValueError):
    """A data file that is not what the extractor needs (not a torch
    checkpoint, wrong keys or shapes, unparsable network definition)."""


# Digests of local files by stat signature, least recently used dropped
# beyond DIGEST_MEMO_SIZE: every photo of a survey passes through here, the
# weights files (the ones worth remembering) are a handful.
DIGEST_MEMO_SIZE = 256
_digest_memo: OrderedDict[tuple, str] = OrderedDict()
_digest_lock = threading.Lock()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 hex digest of a local file, memoized by its stat signature."""
    check_regular_file(path)  # a FIFO would block, a device never end
    stat = os.stat(path)
    signature = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns,
                 stat.st_ino)
    with _digest_lock:
        digest = _digest_memo.get(signature)
        if digest is not None:
            _digest_memo.move_to_end(signature)
            return digest
    hasher = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            hasher.update(chunk)
    digest = hasher.hexdigest()
    with _digest_lock:
        _digest_memo[signature] = digest
        while len(_digest_memo) > DIGEST_MEMO_SIZE:
            _digest_memo.popitem(last=False)
    return digest


def clear_digest_memo() -> None:
    with _digest_lock:
        _digest_memo.clear()


def check_digest(key: str, digest: str, expected: str | None) -> None:
    """HashMismatchError unless ``expected`` is None or ``digest``."""
    if expected is not None and digest != expected:
        raise HashMismatchError(f"Hash doesn't match for extractor's '{key}' file/blob.")


def _storage(loc: DataLocation):
    return storage_for(loc)


def verified_digest(key: str, loc: DataLocation,
                    expected: str | None) -> tuple[str, bool]:
    """
    Make the file at ``loc`` available locally and return its sha256 and
    whether it was downloaded just now. A digest different from
    ``expected`` raises HashMismatchError; a cached remote copy is then
    deleted so that the next call downloads it again.
    """
    if loc.is_remote:
        path, downloaded = cached_path(loc)
        digest = file_sha256(path)
        try:
            check_digest(key, digest, expected)
        except HashMismatchError:
            evict(loc)  # next time the file is downloaded afresh, not trusted
            raise
        return digest, downloaded

    if loc.storage_type == 'filesystem':
        digest = file_sha256(loc.key)
    else:
        digest = hashlib.sha256(_storage(loc).load(loc.key).getvalue()) \
            .hexdigest()
    check_digest(key, digest, expected)
    return digest, False


def open_verified(key: str, loc: DataLocation,
                  expected: str | None) -> tuple[BytesIO, bool]:
    """The file's bytes as a stream (checked against ``expected``), and
    whether it was downloaded from remote storage just now."""
    _, downloaded = verified_digest(key, loc, expected)
    if loc.is_remote:
        path, _ = cached_path(loc)
        return BytesIO(Path(path).read_bytes()), downloaded
    if loc.storage_type == 'filesystem':
        return BytesIO(read_regular_file(loc.key)), False
    stream = _storage(loc).load(loc.key)
    stream.seek(0)
    return stream, False
