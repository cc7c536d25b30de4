"""The fields task messages share: how each is checked, written to JSON and
read back (the pieces ``spacer.messages`` declares its classes with).

Checks take ``(value, owner, field)`` and return the value to keep; readers
take ``(JSON value, owner, key)``. Extractors and trainers are checked and
built through their interfaces (``spacer.interfaces``), never the concrete
classes, so reading a message imports neither torch nor scikit-learn.
"""
from __future__ import annotations

import os
from typing import Any

from spacer.data_location import DataLocation
from spacer.exceptions import InvalidMessageError, MessageError, MissingKeyError, with_context
from spacer.image_labels import TrainingTaskLabels
from spacer.interfaces import (
    ClassifierTrainerInterface, FeatureExtractorInterface, trainer_factory)
from spacer.serialization import json_field
from spacer.warnings_once import warn_once

FEATURE_CACHE_AUTO = 'auto'


def short(value: Any, limit: int = 80) -> str:
    """repr for an error text, cut so a huge bad value can't flood a log."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + '...'


def serialized(value: Any) -> Any:
    return value.serialize()


def serialized_list(values: list) -> list:
    return [value.serialize() for value in values]


# ---- job_token and rowcols --------------------------------------------

def job_token(value: Any, owner: str, _field: str = 'job_token') -> str | int:
    """job_token names a task in logs, errors and the worker's deduplication.
    pyspacer takes any value; callers use strings (CoralNet) or ids, so those
    two pass and anything else (None, lists, objects) is refused."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise MessageError(
            f"{owner}: job_token must be a string or an integer, got {short(value)}.")
    return value


def rowcols(value: Any, owner: str, _field: str = 'rowcols') -> list[tuple[int, int]]:
    # InvalidMessageError: pyspacer asserted these (an AssertionError).
    if not isinstance(value, (list, tuple)):
        raise InvalidMessageError(
            f"{owner}: rowcols must be a list of [row, col], got {value!r}.")
    if len(value) == 0:
        raise InvalidMessageError(f"{owner}: Invalid message, rowcols entry is empty.")
    out = []
    for entry in value:
        if not isinstance(entry, (list, tuple)) or len(entry) != 2:
            raise InvalidMessageError(
                f"{owner}: each rowcol must be a [row, col] pair, got {entry!r}.")
        out.append(tuple(entry))
    return out


def rowcols_to_json(value: list[tuple[int, int]]) -> list[list[int]]:
    return [list(rc) for rc in value]


# ---- locations -----------------------------------------------------------

def location(value: Any, owner: str, field: str) -> DataLocation:
    if not isinstance(value, DataLocation):
        raise MessageError(
            f"{owner}: {field} must be a DataLocation, got {type(value).__name__}"
            f" {short(value)}.")
    return value


def output_location(value: Any, owner: str, field: str) -> DataLocation:
    """An output location, checked before any work: a task that can't store
    its result would fail only after the work (and after other outputs were
    written)."""
    loc = location(value, owner, field)
    if not loc.is_writable:
        raise InvalidMessageError(
            f"{owner}: {field}: Write not supported for '{loc.storage_type}' storage type"
            f" (key {loc.key!r}).")
    return loc


def location_from_json(value: Any, owner: str, key: str) -> DataLocation:
    try:
        return DataLocation.deserialize(value)
    except MessageError as e:
        raise with_context(e, f"{owner}.{key}") from e


def location_list(value: Any, owner: str, field: str) -> list[DataLocation]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise MessageError(f"{owner}: {field} must be a list of DataLocations,"
                           f" got {type(value).__name__} {short(value)}.")
    return [location(loc, owner, f'{field}[{i}]') for i, loc in enumerate(value)]


def location_list_from_json(value: Any, owner: str, key: str) -> list[DataLocation]:
    """value as a list of DataLocations, errors naming the key and index."""
    if not isinstance(value, list):
        raise MessageError(f"{owner}: {key} must be a list of locations,"
                           f" got {type(value).__name__} {short(value)}.")
    locations = []
    for i, entry in enumerate(value):
        try:
            locations.append(DataLocation.deserialize(entry))
        except MessageError as e:
            raise with_context(e, f"{owner}.{key}[{i}]") from e
    return locations


def location_field(output: bool = False) -> Any:
    """A DataLocation field; an output must be writable."""
    return json_field(check=output_location if output else location, to_json=serialized,
                      from_json=location_from_json)


def place(loc: DataLocation) -> tuple:
    """Where a location points, with filesystem paths normalized so that
    'a/b' and './a//b' count as the same file."""
    key = loc.key
    if loc.storage_type == 'filesystem':
        key = os.path.normpath(os.path.abspath(key))
    return loc.storage_type, loc.bucket_name, key


def refuse_overwrite(output: DataLocation, field: str, inputs: dict[str, DataLocation],
                     owner: str) -> None:
    """Storing an output over one of the task's own inputs would lose that data."""
    for name, loc in inputs.items():
        if place(loc) == place(output):
            raise MessageError(
                f"{owner}: {field} and {name} are the same location ({output.key!r});"
                f" the output would overwrite it.")


def extractor_inputs(image_loc: DataLocation, extractor: Any) -> dict[str, DataLocation]:
    """An extraction's inputs: the image and the extractor's data files."""
    inputs = {'image_loc': image_loc}
    weights = getattr(extractor, 'data_locations', None)
    if isinstance(weights, dict):
        inputs.update((f'extractor data_locations[{name!r}]', loc)
                      for name, loc in weights.items() if isinstance(loc, DataLocation))
    return inputs


def refuse_feature_overwrite(output: DataLocation, field: str,
                             labels: TrainingTaskLabels, owner: str) -> None:
    """The classifier or val results stored over a training feature file
    would destroy it."""
    where = place(output)
    for name in TrainingTaskLabels.SETS:
        if any(place(loc) == where for loc in labels[name].keys()):
            raise MessageError(
                f"{owner}: {field} ({output.key!r}) is a feature file of the {name} labels;"
                f" the output would overwrite it.")


# ---- extractor and trainer ---------------------------------------------

def extractor(value: Any, owner: str, _field: str = 'extractor') -> FeatureExtractorInterface:
    if not isinstance(value, FeatureExtractorInterface):
        raise MessageError(
            f"{owner}: extractor must be a FeatureExtractor, got {type(value).__name__}"
            f" {short(value)}.")
    return value


def extractor_from_json(value: Any, owner: str, key: str) -> FeatureExtractorInterface:
    class_path = value.get('class_path') if isinstance(value, dict) else None
    if isinstance(value, dict) and 'class_path' not in value:
        raise MissingKeyError(f"{owner}.{key}: missing key 'class_path'.")
    if isinstance(class_path, str) and class_path.startswith('spacer.extract_features.'):
        warn_once("Extractor class_path 'spacer.extract_features.*' in stored messages",
                  "the spacer.extractors path that serialize() now writes",
                  origin='pyspacer 0.6-0.10 JSON')
    return FeatureExtractorInterface.deserialize(value)


def extractor_field() -> Any:
    return json_field(check=extractor, to_json=serialized, from_json=extractor_from_json)


def trainer(value: Any, owner: str, _field: str = 'trainer') -> ClassifierTrainerInterface:
    """A ClassifierTrainer, or a name/class path that trainer_factory turns
    into one; anything else would fail only when training starts."""
    if isinstance(value, str):
        return trainer_factory(value)
    if not isinstance(value, ClassifierTrainerInterface):
        raise MessageError(
            f"{owner}: trainer must be a ClassifierTrainer or a trainer name,"
            f" got {type(value).__name__} {short(value)}.")
    return value


def trainer_from_json(value: Any, owner: str, key: str) -> ClassifierTrainerInterface:
    if isinstance(value, dict) and 'class_path' not in value:
        raise MissingKeyError(f"{owner}.{key}: missing key 'class_path'.")
    return ClassifierTrainerInterface.deserialize(value)


# ---- the rest of a training task ---------------------------------------

def clf_type(value: Any, owner: str, _field: str = 'clf_type') -> str:
    if value not in ('MLP', 'LR'):
        raise MessageError(f"{owner}: clf_type must be 'MLP' or 'LR', not {short(value)}.")
    return value


def nbr_epochs(value: Any, owner: str, _field: str = 'nbr_epochs') -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MessageError(
            f"{owner}: nbr_epochs must be a positive integer, not {short(value)}.")
    return value


def training_labels(value: Any, owner: str, _field: str = 'labels') -> TrainingTaskLabels:
    if not isinstance(value, TrainingTaskLabels):
        raise MessageError(
            f"{owner}: labels must be a TrainingTaskLabels, not {type(value).__name__}.")
    return value


def training_labels_from_json(value: Any, _owner: str, _key: str) -> TrainingTaskLabels:
    return TrainingTaskLabels.deserialize(value)


def feature_cache_dir(value: Any, owner: str, _field: str = 'feature_cache_dir') \
        -> str | os.PathLike:
    if value is None:  # as in pyspacer: the automatic choice
        return FEATURE_CACHE_AUTO
    if isinstance(value, os.PathLike):
        return value
    if not isinstance(value, str) or not value:
        raise MessageError(
            f"{owner}: feature_cache_dir must be a folder path, 'auto' or 'disabled',"
            f" got {short(value)}.")
    return value


