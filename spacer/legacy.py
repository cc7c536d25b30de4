"""Translations of the older API forms (pyspacer 0.6 onward) into the current ones.

Old forms are accepted at the edges (constructor keywords, stored JSON, module
paths) and turned into the one current class, with a DeprecationWarning that
says what to write instead, issued once per form and process.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import warnings

import numpy as np

logger = logging.getLogger(__name__)
_warned: set[str] = set()
_lock = threading.Lock()
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _outside_spacer_stacklevel() -> int:
    """warnings.warn's stacklevel, from warn_once, of the first frame outside
    this package: the warning names the user's line, wherever in spacer the
    old form was noticed."""
    frame, level = sys._getframe(1), 1  # warn_once's own frame is level 1
    while frame is not None and (frame.f_code.co_filename.startswith(_PACKAGE_DIR)
                                 or frame.f_code.co_filename.startswith('<frozen ')):
        frame, level = frame.f_back, level + 1
    return level


def warn_once(form: str, instead: str, origin: str = 'pyspacer 0.6 API') -> None:
    """Warn about an old form the first time this process uses it."""
    with _lock:
        if form in _warned:
            return
        _warned.add(form)
    warnings.warn(f"{form} is deprecated ({origin}); use {instead} instead.",
                  DeprecationWarning, stacklevel=_outside_spacer_stacklevel())


def reset_warnings() -> None:
    """Forget which old forms already warned (for tests)."""
    with _lock:
        _warned.clear()


def relocate_labels(labels, features_loc):
    """ImageLabels keyed by plain paths, re-keyed to features_loc's storage."""
    from spacer.data_classes import DataLocation, ImageLabels
    relocated = ImageLabels()
    for loc, annotations in labels.items():
        if getattr(labels, 'plain_keys', False) and features_loc is not None:
            loc = DataLocation(features_loc.storage_type, loc.key, features_loc.bucket_name)
        relocated.add_image(loc, annotations)
    return relocated


def split_legacy_train(train, batch_label_count: int = 5000, seed: int = 0):
    """0.6's reference set, carved from train: every 10th image in the labels'
    own key order (as 0.6 took ``image_keys[::10]``), shuffled, then capped at
    ``batch_label_count`` labels' worth of images, counted as 0.6 did by the
    first image's labels; the rest is train. 0.6 shuffled without a seed; the
    seed is fixed here so a job gives the same split every time."""
    from spacer.data_classes import ImageLabels
    keys = list(train.keys())
    if not keys:
        return ImageLabels(), ImageLabels()
    per_image = max(1, len(train[keys[0]]))
    ref_keys = keys[::10]
    np.random.RandomState(seed).shuffle(ref_keys)
    ref_keys = ref_keys[:max(1, batch_label_count // per_image)]
    ref_set = set(ref_keys)
    ref = ImageLabels({k: train[k] for k in ref_keys})
    rest = ImageLabels({k: train[k] for k in keys if k not in ref_set})
    if len(rest.classes_set & ref.classes_set) < 2:
        # Too few images to hold a reference set out (0.6 refused fewer than
        # 10): the training set doubles as the reference set.
        logger.warning("The reference set (every 10th of %d training images) shares fewer"
                       " than 2 classes with the rest: the training set is also the"
                       " reference set.", len(keys))
        return train, train
    return rest, ref
