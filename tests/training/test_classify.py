"""Scoring: one predict_proba per image, pyspacer's scores and order."""
from __future__ import annotations

import json

import numpy as np
import pytest

from spacer.classifier_pickle import loads_classifier
from spacer.classify import score_features
from spacer.data_classes import DataLocation, ImageFeatures
from spacer.exceptions import ClassifierLoadError, RowColumnMismatchError
from spacer.messages import ClassifyFeaturesMsg
from tests.conftest import FIXTURES, PYSPACER_FIXTURES

CLASSIFIERS = PYSPACER_FIXTURES / 'classifiers'
LEGACY = FIXTURES / 'pyspacer' / 'legacy'


@pytest.fixture(scope='module')
def mlp():
    return loads_classifier((CLASSIFIERS / 'MLP.pkl').read_bytes())


def fixture_features() -> ImageFeatures:
    return ImageFeatures.from_bytes(
        (PYSPACER_FIXTURES / 'features' / 'img00.featurevector').read_bytes())


@pytest.mark.parametrize('clf_type', ['MLP', 'LR'])
def test_classify_features_task_matches_pyspacer(clf_type):
    from spacer.tasks import classify_features
    expected = json.loads((CLASSIFIERS / 'results.json').read_text())[
        clf_type]['classify_img00']
    msg = ClassifyFeaturesMsg(
        job_token='t',
        feature_loc=DataLocation(
            'filesystem', str(PYSPACER_FIXTURES / 'features' / 'img00.featurevector')),
        classifier_loc=DataLocation('filesystem', str(CLASSIFIERS / f'{clf_type}.pkl')))

    result = classify_features(msg)

    assert result.classes == expected['classes']
    assert result.valid_rowcol is True
    assert [(r, c) for r, c, _ in result.scores] == \
        [(r, c) for r, c, _ in expected['scores']]
    np.testing.assert_allclose([s for _, _, s in result.scores],
                               [s for _, _, s in expected['scores']],
                               rtol=0, atol=1e-6)


def test_one_call_equals_per_point_calls(mlp):
    features = fixture_features()
    scores = score_features(mlp, features)
    for (row, col, got), pf in zip(scores, features.point_features):
        assert (row, col) == (pf.row, pf.col)
        np.testing.assert_allclose(
            got, mlp.predict_proba(pf.data.reshape(1, -1))[0], atol=1e-12)


def test_selected_rowcols_in_the_order_asked(mlp):
    features = fixture_features()
    wanted = [(int(features.rows[3]), int(features.cols[3])),
              (int(features.rows[0]), int(features.cols[0]))]
    scores = score_features(mlp, features, rowcols=wanted)
    assert [(r, c) for r, c, _ in scores] == wanted
    np.testing.assert_allclose(
        scores[0][2], mlp.predict_proba(features.feat[3:4])[0])
    with pytest.raises(RowColumnMismatchError, match=r'\(9999, 9999\)'):
        score_features(mlp, features, rowcols=[(9999, 9999)])


def test_legacy_features_score_without_positions():
    clf = loads_classifier((LEGACY / 'cnbeta.model').read_bytes())
    expected = json.loads((LEGACY / 'cnbeta.expected.json').read_text())
    features = ImageFeatures.from_bytes((LEGACY / 'cnbeta.jpg.feats').read_bytes())
    assert features.valid_rowcol is False

    scores = score_features(clf, features)

    assert [(r, c) for r, c, _ in scores] == [(None, None)] * 2
    np.testing.assert_allclose([s for _, _, s in scores], expected['scores'],
                               atol=1e-6)


@pytest.mark.parametrize('bad', [np.nan, np.inf, -np.inf])
def test_non_finite_features_are_refused(mlp, bad):
    feat = np.ones((3, mlp.n_features_in_))
    feat[2, 5] = bad
    features = ImageFeatures.from_arrays([1, 2, 3], [4, 5, 6], feat)
    with pytest.raises(ValueError,
                       match=r'NaN or infinite .*point 2 \(row 3, col 6\)'):
        score_features(mlp, features)


def test_huge_finite_features_are_not_mistaken_for_infinite():
    from spacer.classify import _check_finite
    _check_finite(np.full((2, 64), 1e308), None)  # their sum overflows: no error


def test_feature_dimension_must_match_the_classifier(mlp):
    features = ImageFeatures.from_arrays([1], [1], np.ones((1, 4096)))
    with pytest.raises(ValueError, match='expects 64-dimensional .* 4096'):
        score_features(mlp, features)


def test_a_file_that_is_not_a_classifier(tmp_path):
    from spacer.storage import load_classifier
    path = tmp_path / 'not-a-classifier.pkl'
    path.write_bytes((PYSPACER_FIXTURES / 'features' / 'img00.featurevector')
                     .read_bytes())
    with pytest.raises(ClassifierLoadError, match='Not a classifier file'):
        load_classifier(DataLocation('filesystem', str(path)))
