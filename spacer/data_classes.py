"""Data classes of pyspacer's contract, each with its exact JSON form.

Feature files are held as arrays (rows, cols, feat) rather than a list of
per-point objects, so loading thousands of files for training and scoring
whole images stays cheap; ``point_features`` is still there for callers that
use it.
"""
from __future__ import annotations

import json
import struct
import zipfile
from collections import Counter
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from pprint import pformat
from typing import Any, NoReturn, TypeAlias
from urllib.parse import urlparse

import numpy as np

from spacer.content_free import describe, without_content
from spacer.exceptions import (
    InvalidFeaturesError, InvalidMessageError, MessageArgumentError, MessageError,
    MissingKeyError, RowColumnMismatchError, RowColumnMissingError)
from spacer.npz_writer import npz_bytes
from spacer.storage import RemoteStorage, storage_factory

LabelId: TypeAlias = int | str
Annotation: TypeAlias = tuple[int, int, LabelId]

STORAGE_TYPES = ('s3', 'filesystem', 'memory', 'url')
UINT16_MAX = np.iinfo(np.uint16).max


def require(data: Any, key: str, owner: str,
            missing: type[MessageError] = MissingKeyError) -> Any:
    """data[key], or an error that names the owner and the key: by default
    a MissingKeyError (a KeyError, as pyspacer's data[key] raised); classes
    pyspacer built with cls(**data) pass MessageArgumentError (TypeError)."""
    if not isinstance(data, dict):
        raise MessageError(f"{owner}: expected a JSON object, got {type(data).__name__}.")
    try:
        return data[key]
    except KeyError:
        raise missing(f"{owner}: missing key {key!r}.") from None


class DataClass:
    """JSON (de)serialization, storage round trips, equality by value."""

    @classmethod
    def load(cls, loc: DataLocation):
        raw = storage_factory(loc.storage_type, loc.bucket_name).load(loc.key).getvalue()
        try:
            data = json.loads(raw.decode('utf-8'))
        except (UnicodeDecodeError, ValueError) as e:
            raise MessageError(f"{cls.__name__} at {loc.key}: not valid JSON"
                               f" ({describe(e)}).") from without_content(e)
        try:
            return cls.deserialize(data)
        except MessageError as e:  # its text may quote the file's fields
            raise type(e)(f"{cls.__name__} at {loc.key}: the file does not hold a"
                          f" {cls.__name__} ({describe(e)}).") from without_content(e)

    def store(self, loc: DataLocation) -> None:
        storage = storage_factory(loc.storage_type, loc.bucket_name)
        storage.store(loc.key, BytesIO(json.dumps(self.serialize()).encode('utf-8')))

    @classmethod
    def example(cls):
        raise NotImplementedError

    @classmethod
    def deserialize(cls, data: dict):
        if not isinstance(data, dict):
            raise MessageError(
                f"{cls.__name__}: expected a JSON object, got {type(data).__name__}.")
        try:
            return cls(**data)
        except TypeError as e:  # a missing or unknown field, as pyspacer's cls(**data)
            raise MessageArgumentError(f"{cls.__name__}: {e}") from e

    def serialize(self) -> dict:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return pformat(vars(self))

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__


class DataLocation(DataClass):
    """Where a piece of data lives: a URL, an S3 key, a file path or a memory key."""

    def __init__(self, storage_type: str, key: str, bucket_name: str | None = None):
        if storage_type not in STORAGE_TYPES:
            raise InvalidMessageError(
                f"Storage type {storage_type!r} is not valid; expected one of"
                f" {', '.join(STORAGE_TYPES)}.")
        if not isinstance(key, str):
            raise MessageError(f"DataLocation key must be a string, got {key!r}.")
        if storage_type == 's3' and not bucket_name:
            raise InvalidMessageError(f"Need bucket_name to use s3 (key {key!r}).")
        if bucket_name is not None and not isinstance(bucket_name, str):
            raise MessageError(f"bucket_name must be a string, got {bucket_name!r}.")
        self.storage_type = storage_type
        self.key = key
        self.bucket_name = bucket_name

    @classmethod
    def example(cls) -> DataLocation:
        return cls('memory', 'my_blob')

    @property
    def filename(self) -> str:
        path = self.key
        if self.storage_type == 'url':
            try:
                path = urlparse(self.key).path
            except ValueError:  # not a parseable URL: its last segment will do
                path = self.key.split('?', 1)[0]
        return Path(path).name

    @property
    def is_remote(self) -> bool:
        return self.storage_type in ('url', 's3')

    @property
    def is_writable(self) -> bool:
        return self.storage_type != 'url'

    @classmethod
    def deserialize(cls, data: dict) -> DataLocation:
        owner = 'DataLocation'
        unknown = sorted(set(data) - {'storage_type', 'key', 'bucket_name'}) \
            if isinstance(data, dict) else []
        if unknown:  # pyspacer's DataLocation(**data) refused them too
            raise MessageArgumentError(f"{owner}: unknown keys {unknown}.")
        return cls(require(data, 'storage_type', owner, MessageArgumentError),
                   require(data, 'key', owner, MessageArgumentError),
                   data.get('bucket_name'))

    def serialize(self) -> dict:
        return {'storage_type': self.storage_type, 'key': self.key,
                'bucket_name': self.bucket_name}

    def __eq__(self, other) -> bool:
        return (isinstance(other, DataLocation)
                and (self.storage_type, self.key, self.bucket_name)
                == (other.storage_type, other.key, other.bucket_name))

    def __hash__(self) -> int:
        return hash((self.storage_type, self.key, self.bucket_name))

    def __repr__(self) -> str:
        return (f"DataLocation({self.storage_type!r}, {self.key!r}"
                + (f", {self.bucket_name!r})" if self.bucket_name else ")"))


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
            from spacer.legacy import warn_once
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
        from spacer.legacy import warn_once
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


class PointFeatures(DataClass):
    """The feature vector of one point."""

    def __init__(self, row: int | None, col: int | None, data):
        self.row = row
        self.col = col
        self.data = np.asarray(data, dtype=float)

    @classmethod
    def example(cls) -> PointFeatures:
        return cls(row=100, col=100, data=np.array([1.1, 1.3, 1.12]))

    def serialize(self) -> dict:
        return {'row': self.row, 'col': self.col, 'data': self.data.tolist()}

    def __eq__(self, other) -> bool:
        return (isinstance(other, PointFeatures) and self.row == other.row
                and self.col == other.col and np.allclose(self.data, other.data))


class ImageFeatures(DataClass):
    """The feature vectors of an image's points, stored as arrays."""

    def __init__(self, point_features: list[PointFeatures], valid_rowcol: bool,
                 feature_dim: int, npoints: int):
        if len(point_features) == 0:
            raise InvalidFeaturesError("ImageFeatures needs at least one point.")
        if len(point_features) != npoints:
            raise InvalidFeaturesError(
                f"npoints is {npoints} but {len(point_features)} points were given.")
        try:
            feat = np.array([pf.data for pf in point_features], dtype=float)
        except ValueError:  # ragged
            feat = None
        if feat is None or feat.ndim != 2 or feat.shape[1] != feature_dim:
            raise InvalidFeaturesError(f"Feature vectors are not all of dimension {feature_dim}.")
        rows = [pf.row for pf in point_features] if valid_rowcol else None
        cols = [pf.col for pf in point_features] if valid_rowcol else None
        self._set_arrays(rows, cols, feat, valid_rowcol)

    def _init_arrays(self, rows, cols, feat: np.ndarray, valid_rowcol: bool) -> None:
        self.feat = feat
        self.valid_rowcol = bool(valid_rowcol)
        self.npoints = int(feat.shape[0])
        self.feature_dim = int(feat.shape[1])
        if self.valid_rowcol:
            self.rows = np.asarray(rows, dtype=np.int64)
            self.cols = np.asarray(cols, dtype=np.int64)
        else:
            self.rows = self.cols = None
        self._rchash: dict[tuple[int, int], int] | None = None
        self._point_features: list[PointFeatures] | None = None

    @classmethod
    def from_arrays(cls, rows, cols, feat, valid_rowcol: bool = True) -> ImageFeatures:
        """Features from arrays (or lists); rows/cols are ignored when
        valid_rowcol is false. MessageError says what is wrong with them."""
        instance = cls.__new__(cls)
        instance._set_arrays(rows, cols, feat, valid_rowcol)
        return instance

    def _set_arrays(self, rows, cols, feat, valid_rowcol: bool) -> None:
        try:
            feat = np.asarray(feat)
            if valid_rowcol:
                rows, cols = np.asarray(rows), np.asarray(cols)
        except (TypeError, ValueError) as e:  # ragged lists
            raise InvalidFeaturesError(
                f"features are not arrays ({describe(e)}).") from without_content(e)
        problem = _features_problem(feat) or (
            valid_rowcol and (_rowcol_problem('rows', rows, feat.shape[0])
                              or _rowcol_problem('cols', cols, feat.shape[0])))
        if problem:
            raise InvalidFeaturesError(problem)
        self._init_arrays(rows, cols, feat, valid_rowcol)

    @property
    def point_features(self) -> list[PointFeatures]:
        if self._point_features is None:
            if self.valid_rowcol:
                self._point_features = [
                    PointFeatures(int(r), int(c), f)
                    for r, c, f in zip(self.rows, self.cols, self.feat)]
            else:
                self._point_features = [PointFeatures(None, None, f) for f in self.feat]
        return self._point_features

    def _index(self) -> dict[tuple[int, int], int]:
        if self._rchash is None:
            self._rchash = {(int(r), int(c)): i
                            for i, (r, c) in enumerate(zip(self.rows, self.cols))}
        return self._rchash

    def __getitem__(self, rowcol: tuple[int, int]) -> np.ndarray:
        if not self.valid_rowcol:
            raise ValueError('Method not supported for legacy features')
        return self.feat[self._index()[tuple(rowcol)]]

    def get_array(self, rowcol: tuple[int, int]) -> np.ndarray:
        return np.array(self[rowcol]).reshape(1, -1)

    def rows_for(self, annotations) -> np.ndarray:
        """The feature matrix of the annotated points, in annotation order."""
        if not self.valid_rowcol:
            raise RowColumnMissingError
        index = self._index()
        try:
            positions = [index[(row, col)] for row, col, *_ in annotations]
        except KeyError as e:
            raise RowColumnMismatchError(
                f"The labels' row-column positions don't match those of the"
                f" feature vector (example: {e.args[0]}).") from None
        return self.feat[positions]

    def match_with_annotations(self, labels_data: list[Annotation]):
        matrix = self.rows_for(labels_data)
        return zip(matrix, (label for _, _, label in labels_data))

    @classmethod
    def example(cls) -> ImageFeatures:
        return cls.from_arrays([100, 120], [100, 110], [[1.1, 1.3, 1.12], [1.9, 1.3, 1.12]])

    @classmethod
    def make_random(cls, point_labels: list[LabelId], feature_dim: int) -> ImageFeatures:
        """Features loosely tied to their labels, for tests."""
        feat = np.array([hash(label) % 1000 + np.random.randn(feature_dim)
                         for label in point_labels], dtype=float)
        idx = np.arange(len(point_labels))
        return cls.from_arrays(idx, idx, feat)

    @classmethod
    def deserialize(cls, data: list) -> ImageFeatures:
        """The legacy JSON form: a list of vectors without rows and columns."""
        if not isinstance(data, list) or not data:
            raise InvalidFeaturesError("Legacy features must be a non-empty list of vectors.")
        try:
            feat = np.array(data, dtype=float)
        except (TypeError, ValueError) as e:  # its text quotes the offending value
            raise InvalidFeaturesError(
                f"Legacy features are not a list of equal-length vectors of numbers"
                f" ({describe(e)}).") from without_content(e)
        if feat.ndim != 2:
            raise InvalidFeaturesError(f"Legacy features must be a list of vectors (2-D),"
                               f" got a {feat.ndim}-D array of shape {feat.shape}.")
        return cls.from_arrays(None, None, feat, valid_rowcol=False)

    def serialize(self):
        raise NotImplementedError('Use .store() and .load() methods instead.')

    def __eq__(self, other) -> bool:
        if not isinstance(other, ImageFeatures):
            return False
        same_rc = (not self.valid_rowcol and not other.valid_rowcol) or (
            self.valid_rowcol == other.valid_rowcol
            and np.array_equal(self.rows, other.rows) and np.array_equal(self.cols, other.cols))
        return (same_rc and self.feat.shape == other.feat.shape
                and np.allclose(self.feat, other.feat))

    def __repr__(self) -> str:
        return (f"ImageFeatures(npoints={self.npoints}, feature_dim={self.feature_dim},"
                f" valid_rowcol={self.valid_rowcol})")

    @classmethod
    def load(cls, loc: DataLocation, filesystem_cache: str | None = None) -> ImageFeatures:
        storage = storage_factory(loc.storage_type, loc.bucket_name)
        if isinstance(storage, RemoteStorage):
            stream = storage.load(loc.key, filesystem_cache)
        else:
            stream = storage.load(loc.key)
        return cls.from_bytes(stream.getvalue(), loc.key)

    @classmethod
    def from_bytes(cls, raw: bytes, key: str = '<features>') -> ImageFeatures:
        if raw[:2] == b'PK':
            return cls._from_npz(raw, key)
        try:
            data = json.loads(raw.decode('utf-8'))
        except (UnicodeDecodeError, ValueError) as e:
            raise InvalidFeaturesError(
                f"{key}: not a feature file (neither npz nor legacy JSON;"
                f" {describe(e)}).") from without_content(e)
        try:
            return cls.deserialize(data)
        except InvalidFeaturesError as e:
            raise InvalidFeaturesError(f"{key}: {e}") from e

    @classmethod
    def _from_npz(cls, raw: bytes, key: str) -> ImageFeatures:
        from spacer.npz_reader import read_npz
        try:
            arrays = read_npz(raw, ('meta', 'rows', 'cols', 'feat'))
            meta, rows, cols, feat = (arrays[n] for n in ('meta', 'rows', 'cols', 'feat'))
        except (KeyError, ValueError, OSError, zipfile.BadZipFile, EOFError,
                struct.error) as e:
            # numpy's header errors quote the header: never shown.
            raise InvalidFeaturesError(
                f"{key}: corrupt feature file ({describe(e)}).") from without_content(e)
        try:
            return cls._from_npz_arrays(meta, rows, cols, feat)
        except InvalidFeaturesError as e:
            raise InvalidFeaturesError(f"{key}: corrupt feature file ({e}).") from e

    @classmethod
    def _from_npz_arrays(cls, meta: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                         feat: np.ndarray) -> ImageFeatures:
        # meta is pyspacer's header [valid_rowcol, npoints, feature_dim].
        if meta.shape != (3,) or meta.dtype.kind not in 'biu':
            raise InvalidFeaturesError(f"meta must be 3 integers [valid_rowcol, npoints,"
                               f" feature_dim], got {meta.dtype} of shape {meta.shape}")
        problem = _features_problem(feat)
        if problem:
            raise InvalidFeaturesError(problem)
        if feat.shape != (int(meta[1]), int(meta[2])):
            raise InvalidFeaturesError(f"feature array shape {feat.shape} disagrees with"
                               f" its header {meta.tolist()}")
        # Legacy files (valid_rowcol false) hold empty float rows/cols.
        return cls.from_arrays(rows, cols, feat, valid_rowcol=bool(meta[0]))

    def to_bytes(self) -> bytes:
        """pyspacer's npz layout; rows/cols are uint16 as pyspacer writes them,
        widened to uint32 only when a value would not fit (so nothing wraps)."""
        if self.valid_rowcol:
            largest = max(int(self.rows.max()), int(self.cols.max()))
            smallest = min(int(self.rows.min()), int(self.cols.min()))
            if smallest < 0:
                raise ValueError(f"Negative row/column {smallest} cannot be stored.")
            dtype = np.uint16 if largest <= UINT16_MAX else np.uint32
            rows, cols = self.rows.astype(dtype), self.cols.astype(dtype)
        else:
            rows = cols = np.array([])
        meta = np.array([self.valid_rowcol, self.npoints, self.feature_dim])
        return npz_bytes(meta=meta, rows=rows, cols=cols,
                         feat=np.asarray(self.feat, dtype=float))

    def store(self, loc: DataLocation) -> None:
        storage_factory(loc.storage_type, loc.bucket_name).store(loc.key, BytesIO(self.to_bytes()))


_INT64_MAX = np.iinfo(np.int64).max


def _features_problem(feat: np.ndarray) -> str | None:
    """What makes ``feat`` unusable as a feature matrix, if anything
    (O(1): shape and dtype only)."""
    if feat.ndim != 2 or feat.shape[0] == 0 or feat.shape[1] == 0:
        return f"feat must be a non-empty 2-D array, got shape {feat.shape}"
    if feat.dtype.kind not in 'fiu':
        return f"feat must be real numbers, got dtype {feat.dtype}"
    return None


def _rowcol_problem(name: str, values: np.ndarray, npoints: int) -> str | None:
    """What is wrong with a rows/cols array for ``npoints`` points, if
    anything. Only the min/max scan is O(npoints), and only where the
    dtype can hold a bad value."""
    if values.shape != (npoints,):
        return (f"{name} must be a 1-D array of {npoints} values (one per"
                f" feature vector), got shape {values.shape}")
    if values.dtype.kind not in 'iu':
        return f"{name} must be integers, got dtype {values.dtype}"
    if values.dtype.kind == 'i' and values.min() < 0:
        return f"{name} has a negative value ({values.min()})"
    if values.dtype.kind == 'u' and values.dtype.itemsize == 8 \
            and values.max() > _INT64_MAX:
        return f"{name} has a value too large for a pixel position ({values.max()})"
    return None


class ValResults(DataClass):
    """Validation outcome: gt and est index into classes; scores are the top
    calibrated probability per point."""

    def __init__(self, scores: list[float], gt: list[int], est: list[int],
                 classes: list[LabelId]):
        if not (len(gt) == len(est) == len(scores)):
            raise MessageError("ValResults: scores, gt and est differ in length.")
        if gt and (max(max(gt), max(est)) >= len(classes) or min(min(gt), min(est)) < 0):
            raise MessageError("ValResults: gt/est must index into classes.")
        self.scores = scores
        self.gt = gt
        self.est = est
        self.classes = classes

    @classmethod
    def example(cls) -> ValResults:
        return cls(scores=[.9, .8, .7], gt=[0, 1, 0], est=[0, 1, 1], classes=[121, 1222])

    def serialize(self) -> dict:
        return {'scores': self.scores, 'gt': self.gt, 'est': self.est, 'classes': self.classes}
