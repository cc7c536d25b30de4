"""Labelled points per feature file (ImageLabels), and a training task's
train/ref/val sets of them (TrainingTaskLabels)."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pprint import pformat
from typing import Any, NoReturn

import numpy as np

from spacer.data_location import DataLocation
from spacer.exceptions import MessageError, RowColumnMismatchError, RowColumnMissingError
from spacer.image_features import ImageFeatures
from spacer.label_types import Annotation, LabelId
from spacer.serialization import DataClass, require
from spacer.warnings_once import warn_once


def _annotation(entry: Any, owner: str) -> Annotation:
    if not isinstance(entry, (list, tuple)) or len(entry) != 3:
        raise MessageError(f"{owner}: an annotation must be [row, col, label], got {entry!r}.")
    return tuple(entry)


def _type_kind(label_type: type) -> type | None:
    """int or str, the label types training can sort and store; None for
    anything else (bools included, though they are ints)."""
    if issubclass(label_type, (bool, np.bool_)):
        return None
    if issubclass(label_type, (int, np.integer)):
        return int
    return str if issubclass(label_type, str) else None


def _label_kind(label: Any) -> type | None:
    return _type_kind(type(label))


_KIND_NAMES = {int: 'an integer', str: 'a string'}


def _image_labels(loc: DataLocation, annotations: Any) -> list[LabelId]:
    """The labels of one image's annotations, refusing annotations that are
    not (row, col, label), labels that are not an int or str, and a mix of
    int and str labels (numpy would turn the ints into strings). Checked
    per distinct type, so it costs little next to counting the labels."""
    where = f"ImageLabels: image {loc.key!r}"
    if not isinstance(annotations, (list, tuple)):
        raise MessageError(f"{where}: annotations must be a list, got {annotations!r}.")
    if not all(issubclass(t, (list, tuple)) for t in set(map(type, annotations))):
        _raise_first_bad_annotation(where, annotations)
    try:
        labels = [label for _, _, label in annotations]
    except ValueError:  # not 3 items
        _raise_first_bad_annotation(where, annotations)
    kinds = {_type_kind(t) for t in set(map(type, labels))}
    if None in kinds:
        _raise_first_bad_annotation(where, annotations)
    if len(kinds) > 1:
        example = {_label_kind(label): label for label in labels}
        raise MessageError(
            f"{where}: labels must be all integers or all strings, not a mix"
            f" (e.g. {example[int]!r} and {example[str]!r}).")
    return labels


def _raise_first_bad_annotation(where: str, annotations: list) -> NoReturn:
    for entry in annotations:
        if not isinstance(entry, (list, tuple)) or len(entry) != 3:
            raise MessageError(
                f"{where}: an annotation must be [row, col, label], got {entry!r}.")
        if _label_kind(entry[2]) is None:
            raise MessageError(
                f"{where}: label {entry[2]!r} at ({entry[0]!r}, {entry[1]!r}) must"
                f" be an integer or a string.")
    raise AssertionError("no bad annotation found")  # pragma: no cover


def _check_same_label_kind(loc: DataLocation, existing: Counter, new: list) -> None:
    """The new image's labels are of the kind of those already held (all
    of one kind, so any one of them tells)."""
    if not existing or not new:
        return
    old_label, new_label = next(iter(existing)), new[0]
    if _label_kind(old_label) is not _label_kind(new_label):
        raise MessageError(
            f"ImageLabels: image {loc.key!r}: label {new_label!r} is"
            f" {_KIND_NAMES[_label_kind(new_label)]} but other images have"
            f" {_KIND_NAMES[_label_kind(old_label)].split()[-1]} labels"
            f" (e.g. {old_label!r}); labels must be all integers or all strings.")


def annotated_rows(loc: DataLocation, annotations: list,
                   filesystem_cache: str | None = None) -> np.ndarray:
    """The feature vectors of a file's annotated points, in annotation order,
    with pyspacer's training errors naming the file (legacy features have no
    rows/cols; every labelled point must be in the file)."""
    features = ImageFeatures.load(loc, filesystem_cache)
    try:
        return features.rows_for(annotations)
    except RowColumnMissingError:
        raise RowColumnMissingError(
            f"{loc.key}: Features without rowcols are no longer"
            f" supported for training.") from None
    except RowColumnMismatchError as e:
        raise RowColumnMismatchError(f"{loc.key}: {e}") from None


class ImageLabels(DataClass):
    """Per feature file, its annotations (row, col, label)."""

    def __init__(self, data: dict[DataLocation, list[Annotation]] | None = None):
        self._data: dict[DataLocation, list[Annotation]] = {}
        self.label_count_per_class: Counter = Counter()
        self.has_remote_data = False
        self.filesystem_cache: str | None = None
        self.plain_keys = False
        if data is not None and not isinstance(data, dict):
            raise MessageError(f"ImageLabels: data must map feature locations to"
                               f" annotations, got {type(data).__name__}.")
        for loc, annotations in (data or {}).items():
            self.add_image(loc, annotations)

    def add_image(self, feature_loc: DataLocation, image_annotations: list[Annotation]) -> None:
        if isinstance(feature_loc, str):
            # pyspacer 0.6 keyed labels by plain feature paths; the storage
            # type came from TrainClassifierMsg's features_loc.
            warn_once('ImageLabels keyed by plain strings', 'DataLocation keys')
            feature_loc = DataLocation('filesystem', feature_loc)
            self.plain_keys = True
        if not isinstance(feature_loc, DataLocation):
            raise MessageError(
                f"ImageLabels keys must be DataLocations, got {feature_loc!r}.")
        labels = _image_labels(feature_loc, image_annotations)
        remaining = self.label_count_per_class
        if feature_loc in self._data:
            # Counter subtraction drops the classes left with no points.
            remaining = remaining - Counter(label for _, _, label in self._data[feature_loc])
        _check_same_label_kind(feature_loc, remaining, labels)
        self._data[feature_loc] = image_annotations
        self.label_count_per_class = remaining
        self.label_count_per_class.update(labels)
        self.has_remote_data = self.has_remote_data or feature_loc.is_remote

    def set_filesystem_cache(self, dir_path: str | None) -> None:
        self.filesystem_cache = dir_path

    @property
    def classes_set(self) -> set:
        return set(self.label_count_per_class)

    @property
    def label_count(self) -> int:
        return self.label_count_per_class.total()

    @classmethod
    def example(cls) -> ImageLabels:
        return cls({
            DataLocation('filesystem', 'img1.features'): [(100, 200, 3), (101, 200, 2)],
            DataLocation('filesystem', 'img2.features'): [(100, 202, 3), (101, 200, 3)],
            DataLocation('filesystem', 'img3.features'): [(100, 202, 3), (101, 200, 3)],
            DataLocation('filesystem', 'img4.features'): [(100, 202, 3), (101, 200, 3)],
        })

    def serialize(self) -> dict[str, list[Annotation]]:
        return {json.dumps(loc.serialize()): annotations
                for loc, annotations in self._data.items()}

    @classmethod
    def deserialize(cls, data: dict, features_loc: DataLocation | None = None) -> ImageLabels:
        """Reads the current form and the pre-0.13 forms: ``{"data": {...}}``
        and plain feature keys, whose storage comes from ``features_loc``
        (filesystem when not given)."""
        if not isinstance(data, dict):
            raise MessageError(f"ImageLabels: expected a JSON object, got {type(data).__name__}.")
        wrapped = set(data) == {'data'} and isinstance(data['data'], dict)
        if wrapped:
            data = data['data']
        # Inside a message, the message warns (its features_loc gives the storage).
        if features_loc is None and wrapped:
            warn_once('ImageLabels JSON {"data": {...}}', 'the current JSON'
                      ' (ImageLabels.serialize())', origin='pyspacer 0.6 JSON')
        elif features_loc is None and any(
                not (isinstance(key, str) and key.startswith('{')) for key in data):
            warn_once('ImageLabels JSON keyed by plain feature paths', 'the current JSON'
                      ' (keys are serialized DataLocations; ImageLabels.serialize())',
                      origin='pyspacer 0.7-0.12 JSON')
        instance = cls()
        for key, annotations in data.items():
            if not isinstance(annotations, list):
                raise MessageError(
                    f"ImageLabels: annotations of {key!r} must be a list, got {annotations!r}.")
            loc = _label_key_location(key, features_loc)
            owner = f"ImageLabels: image {loc.key!r}"
            instance.add_image(loc, [_annotation(a, owner) for a in annotations])
        return instance

    def keys(self):
        return self._data.keys()

    def items(self):
        return self._data.items()

    def filter_classes(self, accepted_classes) -> ImageLabels:
        accepted = set(accepted_classes)
        filtered = ImageLabels()
        for loc, annotations in self._data.items():
            kept = [a for a in annotations if a[2] in accepted]
            if kept:
                filtered.add_image(loc, kept)
        return filtered

    def load_data_in_batches(self, batch_size: int | None = 1000,
                             random_seed: int | None = None) -> Iterator:
        """pyspacer's generator of (features, labels) batches, images shuffled
        with ``np.random.seed(random_seed)`` when a seed is given."""
        keys = list(self._data)
        if random_seed is not None:
            np.random.seed(random_seed)
            np.random.shuffle(keys)
        feats_buffer: list[np.ndarray] = []
        labels_buffer: list[LabelId] = []
        for loc in keys:
            annotations = self._data[loc]
            matrix = annotated_rows(loc, annotations, self.filesystem_cache)
            feats_buffer.extend(matrix)
            labels_buffer.extend(label for _, _, label in annotations)
            while batch_size and len(feats_buffer) > batch_size:
                yield feats_buffer[:batch_size], labels_buffer[:batch_size]
                feats_buffer = feats_buffer[batch_size:]
                labels_buffer = labels_buffer[batch_size:]
        if feats_buffer:
            yield feats_buffer, labels_buffer

    def load_all_data(self, random_seed: int | None = None):
        return next(self.load_data_in_batches(batch_size=None, random_seed=random_seed))

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, loc: DataLocation) -> list[Annotation]:
        return self._data[loc]

    def __contains__(self, loc: DataLocation) -> bool:
        return loc in self._data

    def __eq__(self, other) -> bool:
        return isinstance(other, ImageLabels) and self._data == other._data

    def __repr__(self) -> str:
        return f"ImageLabels({pformat(self._data)})"


def _label_key_location(key: str, features_loc: DataLocation | None) -> DataLocation:
    if isinstance(key, str) and key.startswith('{'):
        try:
            return DataLocation.deserialize(json.loads(key))
        except ValueError as e:
            raise MessageError(f"ImageLabels: key {key!r} is not a DataLocation: {e}") from e
    if features_loc is None:
        return DataLocation('filesystem', key)
    return DataLocation(features_loc.storage_type, key, features_loc.bucket_name)




class TrainingTaskLabels:
    """The train, ref and val sets of a training task.

    train is learnt from; ref (at most TRAINING_BATCH_LABEL_COUNT labels) gives
    the per-epoch accuracy and calibrates the scores; val measures the result.
    """

    SETS = ('train', 'ref', 'val')

    def __init__(self, train: ImageLabels, ref: ImageLabels, val: ImageLabels):
        self.train = train
        self.ref = ref
        self.val = val

    def __getitem__(self, item: str) -> ImageLabels:
        if item not in self.SETS:
            raise KeyError(item)
        return getattr(self, item)

    def __setitem__(self, item: str, value: ImageLabels) -> None:
        if item not in self.SETS:
            raise KeyError(item)
        setattr(self, item, value)

    def __eq__(self, other) -> bool:
        return isinstance(other, TrainingTaskLabels) and all(
            self[s] == other[s] for s in self.SETS)

    def __repr__(self) -> str:
        return f"TrainingTaskLabels(train={self.train!r}, ref={self.ref!r}, val={self.val!r})"

    @property
    def label_count(self) -> int:
        return sum(self[s].label_count for s in self.SETS)

    @property
    def has_remote_data(self) -> bool:
        return any(self[s].has_remote_data for s in self.SETS)

    def set_filesystem_cache(self, dir_path: str | None) -> None:
        for s in self.SETS:
            self[s].set_filesystem_cache(dir_path)

    def serialize(self) -> dict:
        return {s: self[s].serialize() for s in self.SETS}

    @classmethod
    def deserialize(cls, data: dict,
                    features_loc: DataLocation | None = None) -> TrainingTaskLabels:
        """features_loc: storage of plain feature keys (messages before 0.13)."""
        return cls(**{s: ImageLabels.deserialize(require(data, s, cls.__name__), features_loc)
                      for s in cls.SETS})

    @classmethod
    def example(cls) -> TrainingTaskLabels:
        return cls(ImageLabels.example(), ImageLabels.example(), ImageLabels.example())
