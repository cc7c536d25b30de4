"""The direct calibrated scores equal scikit-learn's, and are only used once proven."""
import json

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier

from spacer import calibrated_scores
from spacer.data_classes import DataLocation, ImageFeatures
from spacer.storage import load_classifier
from spacer.training.calibration import calibrate_prefit
from tests.conftest import FIXTURES, PYSPACER_FIXTURES


def _fitted(estimator, labels):
    rng = np.random.RandomState(0)
    y = np.array(labels * 20)
    x = rng.randn(len(y), 6) + np.searchsorted(sorted(set(labels)), y)[:, None]
    return calibrate_prefit(estimator.fit(x, y), x, y), x


def _check(clf, x):
    first = calibrated_scores.calibrated_proba(clf, x)   # proves, returns sklearn's
    assert calibrated_scores._verdicts[clf] is True
    second = calibrated_scores.calibrated_proba(clf, x)  # the direct path
    np.testing.assert_allclose(second, clf.predict_proba(x), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(first, clf.predict_proba(x))


@pytest.mark.parametrize('name', ['MLP', 'LR'])
def test_pyspacer_classifiers(name):
    clf = load_classifier(DataLocation('filesystem', str(PYSPACER_FIXTURES / 'classifiers' / f'{name}.pkl')))
    feats = ImageFeatures.load(DataLocation(
        'filesystem', str(PYSPACER_FIXTURES / 'features' / 'img00.featurevector')))
    _check(clf, feats.feat)


def test_legacy_classifier():
    clf = load_classifier(DataLocation('filesystem', str(FIXTURES / 'pyspacer' / 'legacy' / 'cnbeta.model')))
    feats = ImageFeatures.load(DataLocation(
        'filesystem', str(FIXTURES / 'pyspacer' / 'legacy' / 'cnbeta.jpg.feats')))
    _check(clf, feats.feat)
    expected = json.loads((FIXTURES / 'pyspacer' / 'legacy' / 'cnbeta.expected.json').read_text())
    np.testing.assert_allclose(calibrated_scores.calibrated_proba(clf, feats.feat),
                               expected['scores'], atol=1e-9)


@pytest.mark.parametrize('labels', [[1, 2], ['sand', 'coral', 'turf'], [3, 1, 2, 7]])
@pytest.mark.parametrize('make', [lambda: SGDClassifier(loss='log_loss', random_state=0),
                                  lambda: MLPClassifier((8,), max_iter=300, random_state=0)])
def test_binary_multiclass_and_string_labels(labels, make):
    clf, x = _fitted(make(), labels)
    _check(clf, x)


@pytest.mark.parametrize('make', [lambda: SGDClassifier(loss='log_loss', random_state=0),
                                  lambda: MLPClassifier((8,), max_iter=300, random_state=0)])
def test_float32_features_as_an_extractor_gives_them(make):
    clf, x = _fitted(make(), [1, 2, 3])
    _check(clf, x.astype(np.float32))


def test_other_calibrations_keep_scikit_learns_path():
    rng = np.random.RandomState(1)
    x, y = rng.randn(90, 4), np.repeat([0, 1, 2], 30)
    clf = CalibratedClassifierCV(SGDClassifier(loss='log_loss', random_state=0),
                                 method='isotonic', cv=3).fit(x, y)
    proba = calibrated_scores.calibrated_proba(clf, x)
    assert calibrated_scores._verdicts[clf] is False
    np.testing.assert_array_equal(proba, clf.predict_proba(x))
    np.testing.assert_array_equal(calibrated_scores.calibrated_proba(clf, x), clf.predict_proba(x))
