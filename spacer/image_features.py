"""Feature files: the feature vectors of an image's points, in pyspacer's npz
layout (and the legacy JSON one).

Features are held as arrays (rows, cols, feat) rather than a list of
per-point objects, so loading thousands of files for training and scoring
whole images stays cheap; ``point_features`` is still there for callers that
use it.
"""
from __future__ import annotations

import json
import struct
import zipfile
from io import BytesIO

import numpy as np

from spacer.content_free import describe, without_content
from spacer.data_location import DataLocation
from spacer.exceptions import (
    InvalidFeaturesError, RowColumnMismatchError, RowColumnMissingError)
from spacer.label_types import Annotation, LabelId
from spacer.npz_reader import read_npz
from spacer.npz_writer import npz_bytes
from spacer.serialization import DataClass
from spacer.storage.factory import storage_for
from spacer.storage.remote import RemoteStorage

UINT16_MAX = np.iinfo(np.uint16).max


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
        storage = storage_for(loc)
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
        storage_for(loc).store(loc.key, BytesIO(self.to_bytes()))


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


