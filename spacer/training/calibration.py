"""Sigmoid calibration of an already trained classifier, as CoralNet stores it.

pyspacer calls ``CalibratedClassifierCV(clf, cv='prefit')``; scikit-learn 1.6
replaced ``cv='prefit'`` by wrapping the classifier in ``FrozenEstimator``
(and 1.8 removed 'prefit'). Either way the result is one calibrator per class
fitted on the classifier's outputs over the reference set. After fitting, the
wrapper is taken off again and ``cv`` reads 'prefit', so the stored object
has exactly the shape of pyspacer's classifiers: a ``CalibratedClassifierCV``
over a plain ``MLPClassifier``/``SGDClassifier``, which CoralNet and
pyspacer's own loader accept.
"""
from __future__ import annotations

import numpy as np

from spacer.extras import extra_imports

with extra_imports():
    from sklearn.calibration import CalibratedClassifierCV

try:
    from sklearn.frozen import FrozenEstimator
except ImportError:  # pragma: no cover - scikit-learn < 1.6
    FrozenEstimator = None


def calibrate_prefit(clf, x: np.ndarray, y: np.ndarray) \
        -> CalibratedClassifierCV:
    """A sigmoid-calibrated ``clf`` fitted on (x, y); clf is not refitted."""
    if FrozenEstimator is None:  # pragma: no cover - scikit-learn < 1.6
        calibrated = CalibratedClassifierCV(clf, cv='prefit', method='sigmoid')
        return calibrated.fit(x, y)

    everything = np.arange(len(y))
    # One "fold" that trains and calibrates on all rows: with a frozen
    # estimator nothing is trained, so this is prefit calibration without
    # the 5-fold minimum of examples per class.
    calibrated = CalibratedClassifierCV(
        FrozenEstimator(clf), method='sigmoid', cv=[(everything, everything)],
        ensemble=False)
    calibrated.fit(x, y)
    calibrated.estimator = clf
    for pair in calibrated.calibrated_classifiers_:
        pair.estimator = clf
    calibrated.cv = 'prefit'
    return calibrated
