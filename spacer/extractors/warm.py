"""
Loaded networks kept warm for the life of the process.

pyspacer rebuilds the network and re-reads its weights for every image.
Here a network is built once per process and reused, keyed by the sha256 of
its data files (not their location: the same weights under two names load
once, and an overwritten file loads anew) and by the device it runs on.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any, Callable, Hashable

from spacer import config

logger = logging.getLogger(__name__)
_lock = threading.RLock()
_models: OrderedDict[Hashable, Any] = OrderedDict()


_load_listeners: list[Callable[[str, float], None]] = []


def add_load_listener(listener: Callable[[str, float], None]) -> None:
    """Call ``listener(label, seconds)`` after each model build; the worker
    layer uses it for its load-time metric (the library knows no metrics)."""
    if listener not in _load_listeners:
        _load_listeners.append(listener)


def get_or_build(key: Hashable, build: Callable[[], Any], label: str = 'model') -> Any:
    """The model cached under ``key``, building it on first use."""
    with _lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        started = time.perf_counter()
        model = build()
        for listener in list(_load_listeners):
            try:
                listener(label, time.perf_counter() - started)
            except Exception:  # a broken metric must not fail extraction
                logger.exception("Load listener %r failed", listener)
        _models[key] = model
        # Distinct extractors may alternate (e.g. during a migration);
        # beyond EXTRACTOR_CACHE_SIZE the least recently used is dropped.
        while len(_models) > max(1, int(config.get('EXTRACTOR_CACHE_SIZE'))):
            _models.popitem(last=False)
        return model


def is_warm(key: Hashable) -> bool:
    with _lock:
        return key in _models


def clear() -> None:
    """Drop every warm model (tests; freeing GPU memory)."""
    with _lock:
        _models.clear()


def resolve_device(setting: str | None = None) -> str:
    """
    The torch device to run on: ``setting`` (default: config DEVICE) of
    'auto' means 'cuda' when a GPU is usable, else 'cpu'; 'cpu', 'cuda' and
    'cuda:N' are taken as given (a CUDA device that is absent is an error).
    """
    import torch

    if setting is None:
        setting = config.get('DEVICE') or 'auto'
    setting = str(setting).strip().lower()
    if setting == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if setting == 'cpu':
        return 'cpu'
    if setting == 'cuda' or setting.startswith('cuda:'):
        if not torch.cuda.is_available():
            raise ValueError(
                f"DEVICE is '{setting}' but no CUDA device is available.")
        return setting
    raise ValueError(
        f"DEVICE must be 'auto', 'cpu', 'cuda' or 'cuda:N', not '{setting}'.")
