"""A classifier trained earlier (by spacer, pyspacer 0.14 or CoralNet's beta
era), checked against the extractor before any photo is touched.

A classifier only makes sense on features of the network it was trained on:
a different length of feature vector is refused here in one line, instead
of failing (or, worse, not failing) once per image on the workers.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spacer.data_classes import DataLocation
from spacer.storage import load_classifier


class ClassifierMismatchError(ValueError):
    """The classifier cannot be used with this extractor or file."""


@dataclass(frozen=True)
class LoadedClassifier:
    path: Path
    classes: list[str]
    feature_dim: int | None


def feature_dim(classifier) -> int | None:
    """Length of the feature vectors the classifier was fitted on."""
    dim = getattr(classifier, 'n_features_in_', None)
    if dim:
        return int(dim)
    for calibrated in getattr(classifier, 'calibrated_classifiers_', []):
        estimator = getattr(calibrated, 'estimator', None) or getattr(
            calibrated, 'base_estimator', None)
        dim = getattr(estimator, 'n_features_in_', None)
        if dim:
            return int(dim)
        if getattr(estimator, 'coef_', None) is not None:
            return int(estimator.coef_.shape[-1])
        if getattr(estimator, 'coefs_', None):
            return int(estimator.coefs_[0].shape[0])
    return None


def load(path: Path | str, extractor) -> LoadedClassifier:
    """Load a classifier file and check it fits the extractor's features.
    Raises ClassifierMismatchError (one line) when it does not."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ClassifierMismatchError(f"classifier file {path} not found")
    try:
        classifier = load_classifier(DataLocation('filesystem', str(path)))
    except Exception as err:        # ClassifierLoadError, unpickling errors
        raise ClassifierMismatchError(
            f"cannot load classifier {path}: {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}") from err
    dim = feature_dim(classifier)
    wanted = getattr(extractor, 'feature_dim', None)
    if dim is not None and wanted is not None and dim != wanted:
        raise ClassifierMismatchError(
            f"classifier {path.name} expects {dim}-d features but the "
            f"extractor {type(extractor).__name__} gives {wanted}-d: use the "
            "extractor it was trained with (--weights or --extractor)")
    return LoadedClassifier(path, [str(c) for c in classifier.classes_], dim)
