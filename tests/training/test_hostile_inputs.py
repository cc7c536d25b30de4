"""Hostile training and scoring inputs: crafted classifier files, label values
of the wrong type, and trainer parameters, each refused with an error that
names what is wrong (and never NaN scores)."""
from __future__ import annotations

import copy
import json
import pickle
from collections import Counter

import numpy as np
import pytest

from spacer.classifier_pickle import loads_classifier
from spacer.classify import score_features
from spacer.data_classes import DataLocation, ImageFeatures, ImageLabels
from spacer.exceptions import (
    ClassifierLoadError, MessageError, TrainingLabelsError)
from spacer.messages import TrainingTaskLabels
from spacer.task_utils import preprocess_labels
from spacer.train_classifier import ClassifierTrainer, MiniBatchTrainer
from tests.conftest import FIXTURES, PYSPACER_FIXTURES

CLASSIFIERS = PYSPACER_FIXTURES / 'classifiers'
LEGACY = FIXTURES / 'pyspacer' / 'legacy'
PATH = 'spacer.train_classifier.MiniBatchTrainer'


@pytest.fixture(scope='module')
def mlp():
    """pyspacer 0.14's MLP: 64-d features, classes 0-3."""
    return loads_classifier((CLASSIFIERS / 'MLP.pkl').read_bytes())


@pytest.fixture(scope='module')
def lr():
    return loads_classifier((CLASSIFIERS / 'LR.pkl').read_bytes())


def _reloaded(clf, edit) -> object:
    """clf, edited, through a classifier file and the loader."""
    clf = copy.deepcopy(clf)
    edit(clf)
    return loads_classifier(pickle.dumps(clf, protocol=2))


def _member(clf):
    return clf.calibrated_classifiers_[0]


def _set(obj_of, name, value):
    return lambda clf: setattr(obj_of(clf), name, value)


def _estimator(clf):
    return _member(clf).estimator


def _features(n: int = 3, dim: int = 64, value: float | None = None):
    feat = np.random.default_rng(0).random((n, dim)) if value is None \
        else np.full((n, dim), value)
    return ImageFeatures.from_arrays(list(range(n)), list(range(n)), feat)


# --- 1. Crafted classifier files --------------------------------------------

M0 = r'calibrated_classifiers_\[0\]\.'  # the first member, in messages
E0 = M0 + r'estimator\.'

MLP_EDITS = {
    # Were: all scores NaN / uniform 1/n scores, reported as a success.
    'no members': (_set(lambda c: c, 'calibrated_classifiers_', []),
                   r'calibrated_classifiers_: .*empty list'),
    'no calibrators': (_set(_member, 'calibrators', []),
                       M0 + r'calibrators: must be one calibrator per output'
                       r' column \(4\), got 0'),
    # Were: AttributeError, KeyError, TypeError, ValueError while scoring.
    'no coefs_': (lambda c: delattr(_estimator(c), 'coefs_'),
                  E0 + r'coefs_: must be a non-empty list'),
    'estimator None': (_set(_member, 'estimator', None),
                       M0 + r'estimator: must be a fitted MLPClassifier or'
                       r' SGDClassifier, got None'),
    'unknown out_activation_': (
        _set(_estimator, 'out_activation_', 'bogus'),
        E0 + r"out_activation_: is a str, not one of"),  # a file's strings are never shown
    'unknown activation': (_set(_estimator, 'activation', 'bogus'),
                           E0 + r"activation: is a str"),
    'members not a list': (_set(lambda c: c, 'calibrated_classifiers_', 5),
                           r'calibrated_classifiers_: must be a non-empty'
                           r' list, got an int'),
    'member not a member': (
        _set(lambda c: c, 'calibrated_classifiers_', [5]),
        r'calibrated_classifiers_\[0\]: must be a calibrated classifier'),
    'classes_ of the wrong length': (
        _set(lambda c: c, 'classes_', np.array([0, 1])),
        M0 + r"classes: \(4 classes\) differ from the classifier's classes_"
        r" \(2\)"),
    'classes_ not an array': (_set(lambda c: c, 'classes_', 'abc'),
                              r'classes_: must be a non-empty 1-D array'),
    'layer of the wrong shape': (
        lambda c: _estimator(c).coefs_.__setitem__(1, np.zeros((7, 4))),
        E0 + r'coefs_\[1\]: takes 7 inputs but the layer before gives 100'),
    'bias of the wrong length': (
        lambda c: _estimator(c).intercepts_.__setitem__(0, np.zeros(3)),
        E0 + r'intercepts_\[0\]: has 3 values for 100 units'),
    'n_layers_ off': (_set(_estimator, 'n_layers_', 5),
                      E0 + r'n_layers_: is 5; the weights make 3'),
    'NaN weights': (
        lambda c: _estimator(c).coefs_[0].__setitem__((0, 0), np.nan),
        E0 + r'coefs_\[0\]: holds NaN or infinite values'),
    'NaN calibration': (
        _set(lambda c: _member(c).calibrators[0], 'a_', np.nan),
        M0 + r'calibrators\[0\]\.a_: must be a finite number'),
    'calibrator of another kind': (
        lambda c: _member(c).calibrators.__setitem__(0, 'x'),
        M0 + r'calibrators\[0\]: must be a sigmoid calibration'),
    'n_features_in_ off': (_set(lambda c: c, 'n_features_in_', 65),
                           r'n_features_in_: is 65 but the weights take 64'),
}


@pytest.mark.parametrize('edit, match', MLP_EDITS.values(), ids=MLP_EDITS)
def test_broken_mlp_classifier_files_are_refused_naming_the_part(
        mlp, edit, match):
    with pytest.raises(ClassifierLoadError,
                       match=r'^Malformed classifier: ' + match):
        _reloaded(mlp, edit)


LR_EDITS = {
    'coef_ 1-D': (_set(_estimator, 'coef_', np.zeros(64)),
                  r'estimator\.coef_: must be a 2-D array'),
    'intercept_ short': (_set(_estimator, 'intercept_', np.zeros(3)),
                         r'intercept_: has 3 values for 4 rows of coef_'),
    'coef_ rows for other classes': (
        _set(_estimator, 'coef_', np.zeros((3, 64))),
        r'intercept_: has 4 values for 3 rows'),
    'estimator classes_ foreign': (
        _set(_estimator, 'classes_', np.array([0, 1, 2, 9])),
        r'estimator\.classes_: names classes the classifier does not have'),
}


@pytest.mark.parametrize('edit, match', LR_EDITS.values(), ids=LR_EDITS)
def test_broken_lr_classifier_files_are_refused_naming_the_part(
        lr, edit, match):
    with pytest.raises(ClassifierLoadError, match=match):
        _reloaded(lr, edit)


def test_the_error_names_the_file_when_told(mlp):
    data = pickle.dumps(
        _reloaded(mlp, lambda c: None), protocol=2).replace(b'softmax',
                                                            b'softmix')
    with pytest.raises(ClassifierLoadError,
                       match=r"^s3://bucket/clf\.pkl: .*out_activation_"):
        loads_classifier(data, source='s3://bucket/clf.pkl')


@pytest.mark.parametrize('name', ['MLP.pkl', 'LR.pkl'])
def test_valid_classifiers_load_and_score_unchanged(name):
    clf = loads_classifier((CLASSIFIERS / name).read_bytes())
    scores = score_features(clf, _features())
    assert all(np.isfinite(s).all() and abs(sum(s) - 1) < 1e-9
               for _r, _c, s in scores)


def test_legacy_classifier_without_n_features_in_names_the_dimension():
    # scikit-learn 0.17's classifier does not say its input size; it was a
    # matmul error.
    clf = loads_classifier((LEGACY / 'cnbeta.model').read_bytes())
    with pytest.raises(ValueError, match='expects 4096-dimensional'):
        score_features(clf, _features(dim=64))


# --- score_features: the last guard ------------------------------------------

def test_scoring_errors_of_an_unchecked_classifier_say_it_is_malformed(mlp):
    clf = copy.deepcopy(mlp)  # edited in memory, never through the loader
    _estimator(clf).out_activation_ = 'bogus'
    with pytest.raises(ClassifierLoadError,
                       match="classifier is malformed.*KeyError") as caught:
        score_features(clf, _features())
    assert 'bogus' not in str(caught.value)  # the file's content is never quoted


def test_a_classifier_giving_nan_never_returns_nan_scores(mlp):
    clf = copy.deepcopy(mlp)
    clf.calibrated_classifiers_ = []  # sums no member: 0 / 0
    with pytest.raises(ClassifierLoadError,
                       match='malformed: it gives NaN scores'):
        score_features(clf, _features())


def test_features_too_large_for_the_classifier_are_blamed(mlp):
    # Finite, but the network's sums overflow into inf - inf.
    with pytest.raises(ValueError, match=r'Scores are NaN for 2 of 2 points'
                       r' \(first at point 0 \(row 0, col 0\)\).*1e\+308'):
        score_features(mlp, _features(n=2, value=1e308))


def test_existing_feature_errors_are_unchanged(mlp):
    with pytest.raises(ValueError, match='expects 64-dimensional'):
        score_features(mlp, _features(dim=8))
    with pytest.raises(ValueError, match='contain NaN or infinite'):
        score_features(mlp, _features(value=np.inf))


# --- 2. Label values ----------------------------------------------------------

class _UncheckedLabels(ImageLabels):
    """ImageLabels that skip the data class's own label checks, as labels
    edited after they were made would: the training-side guard must still
    catch them."""

    def __init__(self, data: dict):
        super().__init__()
        self._data = dict(data)
        self.label_count_per_class = Counter(
            label for annotations in data.values()
            for _row, _col, label in annotations)


def _data(values: list) -> dict:
    """One missing feature file per label: nothing here may be loaded."""
    return {DataLocation('filesystem', f'/nonexistent/{i}.npz'):
            [(0, 0, value), (1, 1, value), (2, 2, value)]
            for i, value in enumerate(values)}


@pytest.mark.parametrize('values, match', [
    ([1, 2, None, 1, 2, 1, 2, 1, 2, 1],
     r"type NoneType \(e\.g\. None; first at feature file"
     r" /nonexistent/2\.npz, point \(row, col\) \(0, 0\)\)"),
    ([1, 2, '3', 1, 2, 1, 2, 1, 2, 1],
     r"all integers or all strings, not a mix: found integer labels"
     r" \(e\.g\. [12]\) and string labels \(e\.g\. '3'"),
    ([1.5, 2.5] * 5, r"type float"),
    ([True, False] * 5, r"type bool"),
])
def test_preprocess_labels_refuses_label_types(values, match):
    # Were: "'<' not supported between NoneType", or a split of strings.
    with pytest.raises(TrainingLabelsError, match=match):
        preprocess_labels(_UncheckedLabels(_data(values)))


def test_trainer_refuses_mixed_labels_before_reading_features():
    # Was: numpy made the ints strings, training ran, then KeyError: 2.
    labels = TrainingTaskLabels(train=_UncheckedLabels(_data([1, '2'])),
                                ref=ImageLabels(_data([1, 2])),
                                val=ImageLabels(_data([1, 2])))
    with pytest.raises(TrainingLabelsError,
                       match=r"the 'train' set, feature file"
                             r" /nonexistent/1\.npz"):
        MiniBatchTrainer()(labels, 1, [], 'MLP')


def test_sets_with_labels_of_different_types_are_refused():
    # Each set is of one type, so each ImageLabels is fine on its own.
    labels = TrainingTaskLabels(train=ImageLabels(_data([1, 2])),
                                ref=ImageLabels(_data(['1', '2'])),
                                val=ImageLabels(_data([1, 2])))
    for check in (preprocess_labels, lambda l: MiniBatchTrainer()(
            l, 1, [], 'LR')):
        with pytest.raises(TrainingLabelsError, match='not a mix'):
            check(labels)


def test_string_labels_alone_are_fine():
    labels = ImageLabels({
        DataLocation('filesystem', f'/nonexistent/{i}.npz'):
            [(0, 0, 'a'), (1, 1, 'b'), (2, 2, 'a')] for i in range(20)})
    assert preprocess_labels(labels).train.classes_set == {'a', 'b'}


# --- 3. Trainer parameters ----------------------------------------------------

@pytest.mark.parametrize('params, match', [
    ({'mlp_large_data_threshold': 'x'}, 'mlp_large_data_threshold must be'),
    ({'mlp_large_data_threshold': -1}, 'mlp_large_data_threshold must be'),
    ({'mlp_hidden_layer_sizes': [5], 'mlp_learning_rate_init': 'x'},
     'mlp_learning_rate_init must be'),
    ({'mlp_learning_rate_init': 'x'}, 'mlp_learning_rate_init must be'),
    ({'mlp_learning_rate_init': -1.0}, 'mlp_learning_rate_init must be'),
    ({'mlp_learning_rate_init': 1e308}, 'mlp_learning_rate_init must be'),
    ({'mlp_learning_rate_init': True}, 'mlp_learning_rate_init must be'),
    ({'mlp_hidden_layer_sizes': 5}, 'mlp_hidden_layer_sizes must be'),
    ({'mlp_hidden_layer_sizes': 'ab'}, 'mlp_hidden_layer_sizes must be'),
    ({'mlp_hidden_layer_sizes': []}, 'mlp_hidden_layer_sizes must be'),
    ({'mlp_hidden_layer_sizes': [0]}, 'mlp_hidden_layer_sizes must be'),
    ({'sgd_loss': 'bogus'}, r"sgd_loss must be one of \[.*'log_loss'"),
    ({'sgd_loss': 5}, 'sgd_loss must be one of'),
    ({'sgd_random_state': 'x'}, 'sgd_random_state must be'),
    ({'sgd_random_state': -5}, 'sgd_random_state must be'),
    ({'sgd_average': 'x'}, 'sgd_average must be'),
    ({'sgd_average': -1}, 'sgd_average must be'),
    ({'batch_size': 0}, 'batch_size must be a positive integer'),
])
def test_trainer_parameters_are_checked_when_the_message_is_read(params,
                                                                  match):
    with pytest.raises(MessageError, match=f'MiniBatchTrainer: {match}'):
        ClassifierTrainer.deserialize({'class_path': PATH, **params})


def test_valid_parameters_round_trip():
    data = {'class_path': PATH, 'mlp_hidden_layer_sizes': [20, 10],
            'mlp_learning_rate_init': 0.01, 'mlp_large_data_threshold': 0,
            'sgd_loss': 'hinge', 'sgd_average': 10, 'sgd_random_state': None}
    trainer = ClassifierTrainer.deserialize(data)
    assert trainer.serialize() == data
    assert ClassifierTrainer.deserialize(json.loads(json.dumps(data))) \
        == trainer


def test_pyspacer_014_trainer_json_loads():
    messages = sorted((PYSPACER_FIXTURES / 'messages').glob('*.json'))
    trainers = [data['trainer'] for data in
                (json.loads(m.read_text()) for m in messages)
                if isinstance(data, dict) and 'trainer' in data]
    assert trainers
    for data in trainers:
        assert ClassifierTrainer.deserialize(data).serialize() == data


def test_diverging_training_is_refused_before_storing(small_split):
    trainer = MiniBatchTrainer(mlp_hidden_layer_sizes=[5],
                               mlp_learning_rate_init=1e30)
    with pytest.raises(MessageError, match='MLP classifier diverged'):
        trainer(small_split, 1, [], 'MLP')
