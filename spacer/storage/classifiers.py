"""Classifier files: stored as pickles CoralNet can read, loaded safely and cached by content."""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from io import BytesIO

from spacer import config
from spacer.storage.factory import storage_for


def store_classifier(loc, clf) -> None:
    from spacer.classifier_pickle import dumps_classifier
    if not hasattr(clf, 'calibrated_classifiers_'):
        raise ValueError("Only fitted classifiers can be stored.")
    storage_for(loc).store(loc.key, BytesIO(dumps_classifier(clf)))


class _ContentCache:
    """Loaded classifiers keyed by the sha256 of their file, so an overwritten
    file is never served stale."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_load(self, data: bytes):
        from spacer.classifier_pickle import loads_classifier
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            if digest in self._items:
                self._items.move_to_end(digest)
                return self._items[digest]
        clf = loads_classifier(data)
        with self._lock:
            self._items[digest] = clf
            while len(self._items) > max(1, config.get('CLASSIFIER_CACHE_SIZE')):
                self._items.popitem(last=False)
        return clf

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


_cache = _ContentCache()


def load_classifier(loc):
    """The classifier at loc (a CalibratedClassifierCV)."""
    return _cache.get_or_load(storage_for(loc).load(loc.key).getvalue())


load_classifier.cache_clear = _cache.clear  # pyspacer's lru_cache API
