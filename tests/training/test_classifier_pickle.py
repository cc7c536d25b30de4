"""Classifier files: pyspacer's and legacy pickles load; hostile ones do not run."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV

from spacer.classifier_pickle import dumps_classifier, loads_classifier
from spacer.data_classes import ImageFeatures
from spacer.exceptions import ClassifierLoadError
from tests.conftest import FIXTURES, PYSPACER_FIXTURES

CLASSIFIERS = PYSPACER_FIXTURES / 'classifiers'
LEGACY = FIXTURES / 'pyspacer' / 'legacy'


@pytest.mark.parametrize('clf_type', ['MLP', 'LR'])
def test_pyspacer_014_classifier_gives_pyspacers_scores(clf_type):
    clf = loads_classifier((CLASSIFIERS / f'{clf_type}.pkl').read_bytes())
    expected = json.loads((CLASSIFIERS / 'results.json').read_text())[
        clf_type]['classify_img00']
    features = ImageFeatures.from_bytes(
        (PYSPACER_FIXTURES / 'features' / 'img00.featurevector').read_bytes())

    scores = clf.predict_proba(features.feat)

    assert clf.classes_.tolist() == expected['classes']
    np.testing.assert_allclose(
        scores, [s[2] for s in expected['scores']], rtol=0, atol=1e-6)


def test_legacy_sklearn_017_pickle_loads_and_scores():
    clf = loads_classifier((LEGACY / 'cnbeta.model').read_bytes())
    expected = json.loads((LEGACY / 'cnbeta.expected.json').read_text())
    features = np.array(json.loads((LEGACY / 'cnbeta.jpg.feats').read_text()))

    assert clf.classes_.tolist() == expected['classes']
    np.testing.assert_allclose(
        clf.predict_proba(features), expected['scores'], rtol=0, atol=1e-6)
    # Upgraded in place: the renamed attributes exist, the stand-in is gone.
    assert clf.estimator.loss == 'log_loss'
    assert not hasattr(clf.estimator, 'loss_function_')
    assert hasattr(clf.calibrated_classifiers_[0], 'calibrators')


def test_round_trip_keeps_scores():
    clf = loads_classifier((CLASSIFIERS / 'MLP.pkl').read_bytes())
    x = np.random.default_rng(0).normal(size=(5, clf.n_features_in_))

    again = loads_classifier(dumps_classifier(clf))

    np.testing.assert_array_equal(again.predict_proba(x), clf.predict_proba(x))


class _RunsShell:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_os_system_payload_is_refused_without_running(tmp_path):
    marker = tmp_path / 'pwned'
    payload = pickle.dumps(_RunsShell(f'touch {marker}'), protocol=2)

    with pytest.raises(ClassifierLoadError, match=r"'posix\.system'"):
        loads_classifier(payload)
    assert not marker.exists()


def test_payload_nested_inside_a_real_classifier_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    clf = loads_classifier((CLASSIFIERS / 'LR.pkl').read_bytes())
    clf.estimator.extra = _RunsShell(f'touch {marker}')

    with pytest.raises(ClassifierLoadError, match='not a scikit-learn'):
        loads_classifier(pickle.dumps(clf, protocol=2))
    assert not marker.exists()


@pytest.mark.parametrize('data, match', [
    (pickle.dumps({'a': 1}), 'holds a dict'),
    (pickle.dumps(CalibratedClassifierCV()), 'never fitted'),
    (b'{"not": "a pickle"}', 'Not a classifier file'),
    (b'', 'Not a classifier file'),
])
def test_non_classifier_files_are_clear_errors(data, match):
    with pytest.raises(ClassifierLoadError, match=match):
        loads_classifier(data)


def test_unknown_sklearn_class_is_refused():
    from sklearn.svm import LinearSVC
    with pytest.raises(ClassifierLoadError, match='LinearSVC'):
        loads_classifier(pickle.dumps(LinearSVC()))


def test_dumps_refuses_unfitted_and_foreign_objects():
    with pytest.raises(ValueError, match='fitted'):
        dumps_classifier(CalibratedClassifierCV())
    with pytest.raises(TypeError, match='CalibratedClassifierCV'):
        dumps_classifier({'a': 1})


def _as_old_sklearn_pickle(clf, renames: dict[str, str]) -> bytes:
    """clf pickled the way scikit-learn 0.22.1/1.1.3 laid it out: old
    attribute names (base_estimator, calibrators_, loss 'log') and old
    module paths (protocol 0, whose globals are plain text lines)."""
    clf.base_estimator = clf.__dict__.pop('estimator')
    for calibrated in clf.calibrated_classifiers_:
        calibrated.base_estimator = calibrated.__dict__.pop('estimator')
        calibrated.calibrators_ = calibrated.__dict__.pop('calibrators')
        calibrated.classes_, calibrated.classes = calibrated.classes, None
        if hasattr(calibrated.base_estimator, 'loss'):
            calibrated.base_estimator.loss = 'log'
    del clf.ensemble
    data = pickle.dumps(clf, protocol=0)
    for new, old in renames.items():
        assert f'c{new}\n'.encode() in data, new
        data = data.replace(f'c{new}\n'.encode(), f'c{old}\n'.encode())
    return data


@pytest.mark.parametrize('clf_type, renames', [
    ('LR', {'sklearn.linear_model._stochastic_gradient':
            'sklearn.linear_model.stochastic_gradient'}),
    ('MLP', {'sklearn.neural_network._multilayer_perceptron':
             'sklearn.neural_network.multilayer_perceptron',
             'sklearn.preprocessing._label': 'sklearn.preprocessing.label',
             'numpy._core.multiarray': 'numpy.core.multiarray'}),
])
def test_old_module_paths_and_attribute_names_load(clf_type, renames):
    raw = (CLASSIFIERS / f'{clf_type}.pkl').read_bytes()
    expected_clf = loads_classifier(raw)
    x = np.random.default_rng(1).normal(size=(6, expected_clf.n_features_in_))

    clf = loads_classifier(_as_old_sklearn_pickle(loads_classifier(raw), renames))

    np.testing.assert_allclose(clf.predict_proba(x),
                               expected_clf.predict_proba(x), atol=1e-12)
    assert hasattr(clf, 'estimator') and not hasattr(clf, 'base_estimator')
    assert clf.ensemble is True
