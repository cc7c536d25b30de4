"""The (row, col) points of an extraction: split into arrays, deduplicated.

Shared by the extractor base class and the GPU pipeline, so neither imports
the other for them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def unique_points(rowcols: Sequence[Sequence[int]]) \
        -> tuple[np.ndarray, np.ndarray]:
    """(distinct (row, col) pairs, index of each given point among them)."""
    points = np.asarray(rowcols, dtype=np.int64).reshape(-1, 2)
    unique, inverse = np.unique(points, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)


def split_rowcols(rowcols) -> tuple[np.ndarray, np.ndarray]:
    """Rows and cols as int64 arrays (validated earlier by
    spacer.extract_inputs.check_extract_inputs)."""
    if len(rowcols) == 0:
        raise ValueError("No point locations given: rowcols is empty.")
    array = np.asarray(rowcols)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(
            "rowcols must be a sequence of (row, col) pairs.")
    return array[:, 0].astype(np.int64), array[:, 1].astype(np.int64)
