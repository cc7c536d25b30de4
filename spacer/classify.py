"""Scoring an image's feature vectors with a classifier.

pyspacer calls ``predict_proba`` once per point; one call over the whole
matrix gives the same numbers (the model is row-wise) for a fraction of the
cost. Scores are calibrated probabilities in ``clf.classes_`` order.

An image has at most a few thousand points: too few for a second BLAS
thread to pay, and on a busy machine a waiting BLAS thread made the call
~3x slower, so scoring runs BLAS on one thread (process-wide while it runs).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from spacer.calibrated_scores import calibrated_proba
from spacer.content_free import describe, without_content
from spacer.data_classes import ImageFeatures
from spacer.exceptions import ClassifierLoadError, RowColumnMismatchError
from spacer.extras import extra_imports
from spacer.train_utils import check_feature_dim

with extra_imports():
    import sklearn

Score = tuple[int | None, int | None, list[float]]


@lru_cache(maxsize=1)
def _threadpools():
    from threadpoolctl import ThreadpoolController
    return ThreadpoolController()


# What a classifier that does not fit together raises while it scores;
# ``loads_classifier`` turns most of these away before scoring.
_MALFORMED_ERRORS = (AttributeError, IndexError, KeyError, TypeError,
                     ValueError)


def _where(point: int, rows: tuple[np.ndarray, np.ndarray] | None) -> str:
    if rows is None:
        return f"point {point}"
    return (f"point {point} (row {int(rows[0][point])},"
            f" col {int(rows[1][point])})")


def _as_real(feat: np.ndarray) -> np.ndarray:
    """The features as real numbers; strings or complex values are refused
    here, so no error from scoring them is blamed on the classifier."""
    if feat.dtype.kind in 'fiu':
        return feat
    if feat.dtype.kind in 'bO':
        try:
            return feat.astype(np.float64)
        except (TypeError, ValueError):
            pass
    raise ValueError(
        f"Feature vectors must hold real numbers, not {feat.dtype} values;"
        f" these features cannot be classified.")


def _check_finite(feat: np.ndarray, rows: np.ndarray | None) -> None:
    if np.isfinite(feat.sum()):  # NaN and inf propagate; overflow is checked below
        return
    finite = np.isfinite(feat).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"Feature vectors contain NaN or infinite values"
            f" ({int((~finite).sum())} of {len(finite)} points; first at"
            f" {_where(bad, rows)}); these features cannot be classified.")


def _proba(clf, feat: np.ndarray) -> np.ndarray:
    """calibrated_proba, with a broken classifier's errors named as such."""
    try:
        # Finiteness is checked by the caller; scikit-learn's own per-call
        # validation of inputs and parameters costs about a third of the call.
        with _threadpools().limit(limits=1, user_api='blas'), \
                sklearn.config_context(assume_finite=True,
                                       skip_parameter_validation=True):
            return calibrated_proba(clf, feat)
    except _MALFORMED_ERRORS as e:
        raise ClassifierLoadError(
            f"The classifier is malformed: scoring failed with"
            f" {describe(e)}.") from without_content(e)


def _check_scores(clf, proba: np.ndarray, feat: np.ndarray,
                  rows: tuple[np.ndarray, np.ndarray] | None) -> None:
    """Never hand out NaN scores: say whether the classifier or the
    features are to blame."""
    if np.isfinite(proba.sum()):  # scores are bounded: no overflow here
        return
    bad = ~np.isfinite(proba).all(axis=1)
    first = int(np.flatnonzero(bad)[0])
    try:
        probe = _proba(clf, np.zeros((1, feat.shape[1])))
        classifier_fault = not np.isfinite(probe).all()
    except ClassifierLoadError:
        classifier_fault = True
    if classifier_fault:
        raise ClassifierLoadError(
            "The classifier is malformed: it gives NaN scores, even for an"
            " all-zero feature vector.")
    raise ValueError(
        f"Scores are NaN for {int(bad.sum())} of {len(bad)} points (first at"
        f" {_where(first, rows)}): their feature values (up to"
        f" {float(np.abs(feat[bad]).max()):.3g} in magnitude) are out of"
        f" this classifier's range; these features cannot be classified.")


def score_features(clf, features: ImageFeatures,
                   rowcols: list[tuple[int, int]] | None = None) -> list[Score]:
    """(row, col, scores) per point, from one ``predict_proba`` call.

    Without ``rowcols``: every point of the file, in file order; legacy
    features (``valid_rowcol`` False) have no positions and give
    ``(None, None, scores)``. With ``rowcols``: those points, in that order
    (``classify_image``); each must be in the features.

    A classifier that fails while scoring, or gives NaN scores, raises
    ``ClassifierLoadError``; scores are never NaN.
    """
    feat = np.asarray(features.feat)
    if feat.ndim != 2 or feat.shape[0] == 0:
        raise ValueError(
            f"Features must be a non-empty 2-D array, got shape {feat.shape}.")
    feat = _as_real(feat)
    check_feature_dim(clf, feat.shape[1])

    if rowcols is not None:
        wanted = [(int(r), int(c)) for r, c in rowcols]
        if not features.valid_rowcol:
            raise ValueError(
                "Legacy features have no row/column positions to select"
                " points from.")
        index = {(int(r), int(c)): i
                 for i, (r, c) in enumerate(zip(features.rows, features.cols))}
        missing = [rc for rc in wanted if rc not in index]
        if missing:
            raise RowColumnMismatchError(
                f"Point (row, col) {missing[0]} is not in the features"
                f" ({len(missing)} of {len(wanted)} missing).")
        positions = [index[rc] for rc in wanted]
        feat = feat[positions]
        rows = np.array([rc[0] for rc in wanted])
        cols = np.array([rc[1] for rc in wanted])
    elif features.valid_rowcol:
        rows, cols = np.asarray(features.rows), np.asarray(features.cols)
    else:
        rows = cols = None

    rowcol_arrays = None if rows is None else (rows, cols)
    _check_finite(feat, rowcol_arrays)
    proba = _proba(clf, feat)
    _check_scores(clf, proba, feat, rowcol_arrays)
    proba = proba.tolist()
    if rows is None:
        return [(None, None, p) for p in proba]
    return [(int(r), int(c), p) for r, c, p in zip(rows.tolist(),
                                                   cols.tolist(), proba)]
