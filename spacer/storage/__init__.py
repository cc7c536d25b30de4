"""Where spacer reads and writes bytes: s3, filesystem, memory and url backends."""
from __future__ import annotations

from spacer.storage.backend import Storage
from spacer.storage.classifiers import load_classifier, store_classifier
from spacer.storage.factory import clear_memory_storage, storage_factory, storage_for
from spacer.storage.filesystem import FileSystemStorage
from spacer.storage.images import load_image, store_image
from spacer.storage.memory import MemoryStorage
from spacer.storage.remote import RemoteStorage
from spacer.storage.s3 import S3Storage
from spacer.storage.url import URLStorage

__all__ = [
    'ClassifierUnpickler', 'FileSystemStorage', 'MemoryStorage', 'RemoteStorage', 'S3Storage',
    'Storage', 'URLStorage', 'clear_memory_storage', 'load_classifier', 'load_image',
    'storage_factory', 'storage_for', 'store_classifier', 'store_image',
]


def __getattr__(name: str):
    # pyspacer's ClassifierUnpickler lives with the classifier code, which
    # needs scikit-learn: imported when asked for, so a producer's install
    # (no scikit-learn) can still import spacer.storage.
    if name == 'ClassifierUnpickler':
        from spacer.classifier_pickle import ClassifierUnpickler
        return ClassifierUnpickler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
