"""Evaluating classifiers on labelled feature files, and test data."""
from __future__ import annotations

import random
import string
from collections.abc import Sequence

import numpy as np

from spacer.data_classes import DataLocation, ImageFeatures, ImageLabels, LabelId  # noqa: F401 (pyspacer exports it here)
from spacer.exceptions import ClassifierLoadError
from spacer.training.feature_arrays import iter_labelled_chunks


def classifier_feature_dim(clf) -> int | None:
    """How many features clf takes, when it says or its weights show.

    Classifiers of scikit-learn < 0.24 (CoralNet's legacy ones) have no
    ``n_features_in_``; their first estimator's weights tell.
    """
    expected = getattr(clf, 'n_features_in_', None)
    if expected is not None:
        return expected
    try:
        estimator = clf.calibrated_classifiers_[0].estimator
        if hasattr(estimator, 'coefs_'):  # MLPClassifier
            return int(estimator.coefs_[0].shape[0])
        return int(estimator.coef_.shape[1])  # linear models
    except (AttributeError, IndexError, KeyError, TypeError):
        return None


def check_feature_dim(clf, feature_dim: int, what: str = 'features') -> None:
    """A clear error when vectors do not fit the classifier."""
    expected = classifier_feature_dim(clf)
    if expected is not None and expected != feature_dim:
        raise ValueError(
            f"The classifier expects {expected}-dimensional feature vectors,"
            f" but the {what} are {feature_dim}-dimensional (features from a"
            f" different extractor?).")


def evaluate_classifiers(clfs: Sequence, labels: ImageLabels) \
        -> tuple[list, list[list], list[list[float]]]:
    """Ground truth, and per classifier its estimates and top scores.

    The set is read once, a chunk at a time, and every classifier scores
    each chunk with one ``predict_proba`` (its argmax is the calibrated
    classifier's ``predict``).
    """
    gts: list = []
    ests: list[list] = [[] for _ in clfs]
    scores: list[list[float]] = [[] for _ in clfs]
    for x, y in iter_labelled_chunks(labels):
        gts.extend(y)
        for i, (clf, est, score) in enumerate(zip(clfs, ests, scores)):
            check_feature_dim(clf, x.shape[1])
            proba = clf.predict_proba(x)
            if not np.isfinite(proba.sum()):  # never NaN in ValResults
                raise ClassifierLoadError(
                    f"Classifier #{i} of the {len(clfs)}"
                    f" evaluated gives NaN scores for these labelled"
                    f" features: it is malformed, or does not fit them.")
            best = proba.argmax(axis=1)
            est.extend(clf.classes_[best].tolist())
            score.extend(proba[np.arange(len(best)), best].tolist())
    if not gts:
        raise ValueError("Cannot evaluate on an empty set of labels.")
    return gts, ests, scores


def evaluate_classifier(clf, labels: ImageLabels) \
        -> tuple[list, list, list[float]]:
    """pyspacer's (ground truth, estimates, top scores) of clf on labels."""
    gts, (ests,), (scores,) = evaluate_classifiers([clf], labels)
    return gts, ests, scores


def calc_acc(gt: Sequence, est: Sequence) -> float:
    """Fraction of positions where the two sequences agree."""
    if len(gt) == 0 or len(est) == 0:
        raise ValueError('Inputs can not be empty')
    if len(gt) != len(est):
        raise ValueError('Input gt and est must have the same length')
    return float(sum(g == e for g, e in zip(gt, est))) / len(gt)


def make_random_data(im_count: int,
                     class_list: list,
                     points_per_image: int,
                     feature_dim: int,
                     feature_loc_base: DataLocation,
                     feature_loc_keys: list[str] | None = None) -> ImageLabels:
    """Stored random features and their labels, for tests (pyspacer's helper).

    Each image has every class at least once; the features lean on the
    labels, so a classifier can learn something.
    """
    labels = ImageLabels()
    for i in range(im_count):
        point_labels = np.random.choice(class_list, points_per_image).tolist()
        point_labels[:len(class_list)] = class_list
        features = ImageFeatures.make_random(point_labels, feature_dim)
        if feature_loc_keys is None:
            key = ''.join(random.choice(string.ascii_uppercase + string.digits)
                          for _ in range(20))
        else:
            key = feature_loc_keys[i]
        loc = DataLocation(storage_type=feature_loc_base.storage_type,
                           key=key, bucket_name=feature_loc_base.bucket_name)
        features.store(loc)
        labels.add_image(loc, [
            (int(row), int(col), label)
            for row, col, label in zip(features.rows, features.cols,
                                       point_labels)])
    return labels
