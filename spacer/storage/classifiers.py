"""Classifier files: stored as pickles CoralNet can read, loaded safely and cached by content."""
from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from io import BytesIO

from spacer import config
from spacer.storage.confinement import PathOutsideRootsError, confine
from spacer.storage.factory import storage_for


def store_classifier(loc, clf) -> None:
    from spacer.classifier_pickle import dumps_classifier  # imports scikit-learn
    if not hasattr(clf, 'calibrated_classifiers_'):
        raise ValueError("Only fitted classifiers can be stored.")
    storage_for(loc).store(loc.key, BytesIO(dumps_classifier(clf)))


def file_fingerprint(loc) -> tuple | None:
    """A cheap identity of a local file's content: an overwrite (atomic rename
    or in-place write) changes its inode, size or modification time. None for
    other storages, whose bytes are hashed instead."""
    if loc.storage_type != 'filesystem':
        return None
    try:
        confine(loc.key, 'read')  # no stat outside FILESYSTEM_ROOTS either
        st = os.stat(loc.key)
    except (PathOutsideRootsError, OSError):
        return None  # the load below raises the clear error
    return ('file', os.path.realpath(loc.key), st.st_dev, st.st_ino, st.st_size,
            st.st_mtime_ns)


class _ContentCache:
    """Loaded classifiers keyed by their file's content (sha256, or a local
    file's fingerprint), so an overwritten file is never served stale."""

    def __init__(self) -> None:
        self._items: OrderedDict[object, object] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def _put(self, key, clf) -> None:
        with self._lock:
            self._items[key] = clf
            while len(self._items) > max(1, config.get('CLASSIFIER_CACHE_SIZE')):
                self._items.popitem(last=False)

    def load(self, loc):
        from spacer.classifier_pickle import loads_classifier  # imports scikit-learn
        fingerprint = file_fingerprint(loc)
        if fingerprint is not None and (clf := self._get(fingerprint)) is not None:
            return clf
        data = storage_for(loc).load(loc.key).getvalue()
        key = fingerprint or hashlib.sha256(data).hexdigest()
        if fingerprint is None and (clf := self._get(key)) is not None:
            return clf
        clf = loads_classifier(data, source=loc.key)
        if fingerprint is not None and file_fingerprint(loc) != fingerprint:
            return clf  # overwritten while we read it: don't cache either version
        self._put(key, clf)
        return clf

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


_cache = _ContentCache()


def load_classifier(loc):
    """The classifier at loc (a CalibratedClassifierCV)."""
    return _cache.load(loc)


load_classifier.cache_clear = _cache.clear  # pyspacer's lru_cache API
