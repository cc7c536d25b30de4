"""Every piece of process-wide state in spacer, with what bounds it.

Caches and singletons live beside the code that uses them; this is the one
list of them, so that none grows unseen and tests can start clean
(``clear_all()``). Entries name their module rather than import it: listing
the state loads no torch, scikit-learn or boto3, and clearing a module that
was never imported has nothing to do.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Callable


@dataclass(frozen=True)
class ProcessState:
    """One module-level cache or singleton."""
    module: str
    attribute: str
    bound: str
    # How to empty it (given the module); None for registrations, which are
    # configuration rather than cache.
    clear: Callable[[ModuleType], None] | None


def _cache_clear(name: str) -> Callable[[ModuleType], None]:
    return lambda module: getattr(module, name).cache_clear()


def _call(name: str) -> Callable[[ModuleType], None]:
    return lambda module: getattr(module, name)()


STATE: tuple[ProcessState, ...] = (
    ProcessState('spacer.extractors.warm', '_models',
                 'EXTRACTOR_CACHE_SIZE built models, least recently used dropped', _call('clear')),
    ProcessState('spacer.extractors.warm', '_load_listeners',
                 'one per distinct listener the worker layer adds', None),
    ProcessState('spacer.extractors.data_files', '_digest_memo',
                 'DIGEST_MEMO_SIZE file digests, least recently used dropped',
                 _call('clear_digest_memo')),
    ProcessState('spacer.extractors.caffe_proto', 'message_classes',
                 'lru_cache(maxsize=1): the Caffe message classes', _cache_clear('message_classes')),
    ProcessState('spacer.storage.classifiers', '_cache',
                 'CLASSIFIER_CACHE_SIZE loaded classifiers, least recently used dropped',
                 lambda module: module._cache.clear()),
    ProcessState('spacer.storage.factory', '_memory',
                 'the memory storage: its blobs stay until cleared (tests, embedded worker)',
                 _call('clear_memory_storage')),
    ProcessState('spacer.storage.url_guard', 'parse_networks',
                 'lru_cache(maxsize=8) parsed URL_ALLOWED_NETWORKS values',
                 _cache_clear('parse_networks')),
    ProcessState('spacer.npz_reader', '_parse_header',
                 'lru_cache(maxsize=256) parsed npy headers', _cache_clear('_parse_header')),
    ProcessState('spacer.classify', '_threadpools',
                 'lru_cache(maxsize=1): the thread-pool controller', _cache_clear('_threadpools')),
    ProcessState('spacer.calibrated_scores', '_verdicts',
                 'weak references: one per classifier still alive',
                 lambda module: module._verdicts.clear()),
    ProcessState('spacer.warnings_once', '_warned',
                 'one per old API form (a few dozen)', _call('reset_warnings')),
    ProcessState('spacer.class_registry', '_registered',
                 'one per class an operator registers', None),
    ProcessState('spacer.aws', 'THREAD_LOCAL', 'one AWS session per thread', None),
    ProcessState('spacer.storage.s3', '_local', 'one S3 client per thread', None),
)


def clear_all() -> None:
    """Empty every cache of the modules imported so far (for tests)."""
    for state in STATE:
        module = sys.modules.get(state.module)
        if module is not None and state.clear is not None:
            state.clear(module)
