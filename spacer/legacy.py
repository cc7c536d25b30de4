"""Translations of the older API forms (pyspacer 0.6 onward) into the current ones.

Old forms are accepted at the edges (constructor keywords, stored JSON, module
paths) and turned into the one current class, with a DeprecationWarning that
says what to write instead, issued once per form and process. The message
classes call the hooks here (``train_msg_args``, ``train_msg_from_old_json``)
and know nothing else of the old forms.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from spacer import config
from spacer import message_fields as fields
from spacer.data_location import DataLocation
from spacer.exceptions import MessageError
from spacer.image_labels import ImageLabels, TrainingTaskLabels
from spacer.interfaces import ClassifierTrainerInterface
from spacer.serialization import require
from spacer.warnings_once import reset_warnings, warn_once

__all__ = [
    'legacy_labels', 'legacy_trainer', 'relocate_labels', 'reset_warnings',
    'split_legacy_train', 'train_msg_args', 'train_msg_from_old_json', 'warn_once',
]

logger = logging.getLogger(__name__)

_OWNER = 'TrainClassifierMsg'


def train_msg_args(labels: Any, previous_model_locs: Any, model_loc: Any, valresult_loc: Any,
                   feature_cache_dir: Any, legacy_args: tuple, trainer: Any,
                   trainer_name: Any, train_labels: Any, val_labels: Any,
                   features_loc: Any) -> dict:
    """TrainClassifierMsg's constructor arguments in the current form: the
    0.6 positional order and the 0.6 keywords (trainer_name, train_labels,
    val_labels, features_loc) translated."""
    if isinstance(labels, ImageLabels):
        # pyspacer 0.6 positional order: (job_token, trainer_name, nbr_epochs,
        # clf_type, train_labels, val_labels, features_loc, previous_model_locs,
        # model_loc, valresult_loc).
        if len(legacy_args) != 1:
            raise MessageError(
                "TrainClassifierMsg: the pyspacer 0.6 positional form takes ten"
                " arguments (job_token, trainer_name, nbr_epochs, clf_type,"
                " train_labels, val_labels, features_loc, previous_model_locs,"
                " model_loc, valresult_loc).")
        train_labels, val_labels, features_loc, previous_model_locs, model_loc, \
            valresult_loc = (labels, previous_model_locs, model_loc, valresult_loc,
                             feature_cache_dir, legacy_args[0])
        labels, feature_cache_dir = None, fields.FEATURE_CACHE_AUTO
    elif legacy_args:
        raise TypeError(f"TrainClassifierMsg takes at most 10 positional arguments"
                        f" ({10 + len(legacy_args)} given).")
    if trainer_name is not None:
        warn_once("TrainClassifierMsg(trainer_name=...)", "trainer=...")
        trainer = trainer if trainer is not None else trainer_name
    if train_labels is not None or val_labels is not None:
        warn_once("TrainClassifierMsg(train_labels=..., val_labels=..., features_loc=...)",
                  "labels=TrainingTaskLabels(train, ref, val) or preprocess_labels()")
        labels = legacy_labels(train_labels, val_labels, features_loc)
    return dict(trainer=trainer, labels=labels, previous_model_locs=previous_model_locs,
                model_loc=model_loc, valresult_loc=valresult_loc,
                feature_cache_dir=feature_cache_dir)


def train_msg_from_old_json(data: Any) -> dict | None:
    """TrainClassifierMsg's constructor arguments from the JSON of pyspacer
    0.6-0.12 (train_labels/val_labels, features_loc, trainer_name); None for
    the current JSON."""
    if not isinstance(data, dict):
        return None
    if 'train_labels' in data:
        return _train_msg_06(data)
    if 'features_loc' not in data and 'trainer_name' not in data:
        return None
    if 'features_loc' in data:
        warn_once("TrainClassifierMsg JSON with features_loc and plain label keys",
                  "the current JSON (labels keyed by serialized DataLocations; load"
                  " and store msg.serialize())", origin='pyspacer 0.7-0.12 JSON')
    if 'trainer_name' in data:
        trainer = data['trainer_name']  # the constructor takes only a name
    else:
        trainer = fields.trainer_from_json(require(data, 'trainer', _OWNER), _OWNER, 'trainer')
    features_loc = _location(data, 'features_loc') if data.get('features_loc') else None
    return dict(job_token=require(data, 'job_token', _OWNER), trainer=trainer,
                nbr_epochs=require(data, 'nbr_epochs', _OWNER),
                clf_type=require(data, 'clf_type', _OWNER),
                labels=TrainingTaskLabels.deserialize(require(data, 'labels', _OWNER),
                                                      features_loc),
                previous_model_locs=_locations(data, 'previous_model_locs'),
                model_loc=_location(data, 'model_loc'),
                valresult_loc=_location(data, 'valresult_loc'),
                feature_cache_dir=data.get('feature_cache_dir', fields.FEATURE_CACHE_AUTO))


def _location(data: dict, key: str) -> DataLocation:
    return fields.location_from_json(require(data, key, _OWNER), _OWNER, key)


def _locations(data: dict, key: str) -> list[DataLocation]:
    return fields.location_list_from_json(require(data, key, _OWNER), _OWNER, key)


def _train_msg_06(data: dict) -> dict:
    """The JSON pyspacer 0.6-0.12 stored: train/val labels and features_loc."""
    warn_once("TrainClassifierMsg JSON with train_labels/val_labels/features_loc",
              "the current JSON (labels: train/ref/val; load and store"
              " msg.serialize())", origin='pyspacer 0.6 JSON')
    features_loc = _location(data, 'features_loc')
    train = ImageLabels.deserialize(require(data, 'train_labels', _OWNER), features_loc)
    val = ImageLabels.deserialize(require(data, 'val_labels', _OWNER), features_loc)
    return dict(job_token=require(data, 'job_token', _OWNER),
                trainer=legacy_trainer(data),
                nbr_epochs=require(data, 'nbr_epochs', _OWNER),
                clf_type=require(data, 'clf_type', _OWNER),
                labels=legacy_labels(train, val, None),
                previous_model_locs=_locations(data, 'previous_model_locs'),
                model_loc=_location(data, 'model_loc'),
                valresult_loc=_location(data, 'valresult_loc'))


def legacy_trainer(data: dict) -> Any:
    """0.6 JSON names its trainer in trainer_name (a string, checked by the
    constructor); a 'trainer' object is the current form."""
    if data.get('trainer_name') is not None:
        return data['trainer_name']
    trainer = data.get('trainer')
    if isinstance(trainer, dict):
        return ClassifierTrainerInterface.deserialize(trainer)
    return trainer if trainer is not None else 'minibatch'


def legacy_labels(train_labels: Any, val_labels: Any,
                  features_loc: Any) -> TrainingTaskLabels:
    """0.6's train/val pair becomes train/ref/val, ref carved from train."""
    if train_labels is None or val_labels is None:
        raise MessageError("TrainClassifierMsg: train_labels and val_labels go together.")
    for field, value in (('train_labels', train_labels), ('val_labels', val_labels)):
        if not isinstance(value, ImageLabels):
            raise MessageError(f"TrainClassifierMsg: {field} must be an ImageLabels,"
                               f" got {type(value).__name__} {fields.short(value)}.")
    if features_loc is not None:
        fields.location(features_loc, _OWNER, 'features_loc')
    train = relocate_labels(train_labels, features_loc)
    val = relocate_labels(val_labels, features_loc)
    train, ref = split_legacy_train(train, config.get('TRAINING_BATCH_LABEL_COUNT'))
    return TrainingTaskLabels(train=train, ref=ref, val=val)


def relocate_labels(labels, features_loc):
    """ImageLabels keyed by plain paths, re-keyed to features_loc's storage."""
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
