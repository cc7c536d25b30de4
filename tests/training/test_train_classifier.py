"""MiniBatchTrainer: pyspacer's parameters and outputs, trained fast."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier

from spacer.classifier_pickle import dumps_classifier, loads_classifier
from spacer.data_classes import DataLocation, ImageFeatures, ImageLabels
from spacer.exceptions import (
    ClassPathError, MessageError, RowColumnMismatchError,
    RowColumnMissingError, TrainingLabelsError)
from spacer.messages import TrainingTaskLabels
from spacer.task_utils import preprocess_labels
from spacer.train_classifier import (
    ClassifierTrainer, MiniBatchTrainer, trainer_factory)
from spacer.training.synthetic import make_source

PATH = 'spacer.train_classifier.MiniBatchTrainer'


def test_serializes_only_non_default_parameters():
    assert MiniBatchTrainer().serialize() == {'class_path': PATH}
    trainer = MiniBatchTrainer(batch_size=100, mlp_hidden_layer_sizes=(50, 20),
                               sgd_average=False)
    data = trainer.serialize()
    assert data == {'class_path': PATH, 'batch_size': 100,
                    'mlp_hidden_layer_sizes': [50, 20], 'sgd_average': False}
    assert ClassifierTrainer.deserialize(data) == trainer


def test_factory_names_and_allow_list():
    assert trainer_factory('minibatch') == MiniBatchTrainer()
    assert trainer_factory(PATH) == MiniBatchTrainer()
    with pytest.raises(ClassPathError):
        trainer_factory('os.system')
    with pytest.raises(MessageError, match='bad parameters'):
        ClassifierTrainer.deserialize({'class_path': PATH, 'nope': 1})


@pytest.mark.parametrize('count, expected', [
    (49999, ((100,), 1e-3)), (50000, ((200, 100), 1e-4))])
def test_mlp_size_rule_at_50000_labels(count, expected):
    assert MiniBatchTrainer().mlp_settings(count) == expected


def test_mlp_settings_can_be_given():
    trainer = MiniBatchTrainer(mlp_hidden_layer_sizes=(7,),
                               mlp_large_data_threshold=10)
    assert trainer.mlp_settings(10 ** 6) == ((7,), 1e-3)
    assert MiniBatchTrainer(mlp_large_data_threshold=10).mlp_settings(10) \
        == ((200, 100), 1e-4)


@pytest.mark.parametrize('clf_type, estimator_class',
                         [('MLP', MLPClassifier), ('LR', SGDClassifier)])
def test_trains_a_calibrated_classifier(small_split, clf_type,
                                        estimator_class):
    clf, val_results, msg = MiniBatchTrainer()(small_split, 4, [], clf_type)

    assert isinstance(clf, CalibratedClassifierCV)
    assert isinstance(clf.estimator, estimator_class)
    assert clf.cv == 'prefit'
    assert clf.classes_.tolist() == [0, 1, 2, 3]
    assert len(msg.ref_accs) == 4
    assert msg.pc_accs == []
    assert msg.acc > 0.6  # 4 classes: chance is ~0.25
    assert len(val_results.gt) == small_split.val.label_count
    agree = np.mean(np.array(val_results.gt) == np.array(val_results.est))
    assert agree == pytest.approx(msg.acc)
    # The stored form loads back (allow-list) and predicts the same.
    x = np.random.default_rng(0).random((10, 32))
    again = loads_classifier(dumps_classifier(clf))
    np.testing.assert_array_equal(again.predict_proba(x), clf.predict_proba(x))


def test_previous_classifiers_are_evaluated_on_val(small_split):
    first, _, first_msg = MiniBatchTrainer()(small_split, 2, [], 'LR')
    _, _, msg = MiniBatchTrainer()(small_split, 2, [first, first], 'MLP')
    assert msg.pc_accs == [first_msg.acc, first_msg.acc]


def test_mlp_weights_land_in_sklearn_network(small_split):
    from spacer.training.feature_arrays import load_labelled_arrays
    clf, _, msg = MiniBatchTrainer()(small_split, 3, [], 'MLP')
    with load_labelled_arrays(small_split.ref) as ref:
        uncalibrated = clf.estimator.predict(ref.features)
        assert np.mean(uncalibrated == ref.labels) == pytest.approx(
            msg.ref_accs[-1])


def test_two_classes_use_one_logistic_output(tmp_path):
    labels = preprocess_labels(make_source(
        tmp_path, 600, n_classes=2, feature_dim=32, points_per_image=20,
        seed=2, noise=0.2))
    clf, _, msg = MiniBatchTrainer()(labels, 5, [], 'MLP')
    assert clf.estimator.n_outputs_ == 1
    assert clf.predict_proba(np.zeros((1, 32))).shape == (1, 2)
    assert msg.acc > 0.6


def test_string_labels(tmp_path):
    names = ['sand', 'coral', 'algae']
    labels = preprocess_labels(make_source(
        tmp_path, 900, n_classes=3, feature_dim=32, points_per_image=30,
        seed=4, noise=0.2, class_names=names))
    for clf_type in ('MLP', 'LR'):
        clf, val_results, msg = MiniBatchTrainer()(labels, 5, [], clf_type)
        assert sorted(clf.classes_.tolist()) == sorted(names)
        assert val_results.classes == clf.classes_.tolist()
        assert msg.acc > 0.5


def test_memory_mapped_training_matches_in_memory(small_split, tmp_path,
                                                  monkeypatch):
    in_memory, _, msg = MiniBatchTrainer()(small_split, 2, [], 'LR')
    monkeypatch.setenv('SPACER_TRAINING_IN_MEMORY_MB', '0')
    mapped, _, mapped_msg = MiniBatchTrainer()(
        small_split, 2, [], 'LR', feature_cache_dir=str(tmp_path / 'cache'))
    assert mapped_msg.ref_accs == msg.ref_accs
    x = np.random.default_rng(0).random((10, 32))
    np.testing.assert_allclose(mapped.predict_proba(x),
                               in_memory.predict_proba(x))
    # The memory map was removed with the task.
    assert list((tmp_path / 'cache').iterdir()) == []


# --- bad input -------------------------------------------------------------

def _labels(loc, annotations):
    return ImageLabels({loc: annotations})


def _task(train, ref=None, val=None):
    return TrainingTaskLabels(train=train, ref=ref or train, val=val or train)


def test_labelled_point_missing_from_features(tmp_path):
    loc = DataLocation('filesystem', str(tmp_path / 'a.featurevector'))
    ImageFeatures.from_arrays([1, 2], [1, 2], np.ones((2, 4))).store(loc)
    labels = _labels(loc, [(1, 1, 0), (5, 5, 1)])
    with pytest.raises(RowColumnMismatchError,
                       match=r"a\.featurevector: .*\(5, 5\)"):
        MiniBatchTrainer()(_task(labels), 1, [], 'LR')


def test_legacy_features_cannot_be_trained_on(tmp_path):
    loc = DataLocation('filesystem', str(tmp_path / 'legacy.feats'))
    (tmp_path / 'legacy.feats').write_text('[[1.0, 2.0], [3.0, 4.0]]')
    labels = _labels(loc, [(0, 0, 0), (1, 1, 1)])
    with pytest.raises(RowColumnMissingError,
                       match='legacy.feats: Features without rowcols'):
        MiniBatchTrainer()(_task(labels), 1, [], 'LR')


@pytest.mark.parametrize('bad', [np.nan, np.inf])
def test_non_finite_training_features(tmp_path, bad):
    loc = DataLocation('filesystem', str(tmp_path / 'nan.featurevector'))
    feat = np.ones((2, 4))
    feat[1, 2] = bad
    ImageFeatures.from_arrays([1, 2], [1, 2], feat).store(loc)
    labels = _labels(loc, [(1, 1, 0), (2, 2, 1)])
    with pytest.raises(ValueError, match='nan.featurevector: .*NaN or infinite'):
        MiniBatchTrainer()(_task(labels), 1, [], 'LR')


def test_feature_files_of_different_dimensions(tmp_path):
    data = {}
    for name, dim in (('a', 4), ('b', 6)):
        loc = DataLocation('filesystem', str(tmp_path / f'{name}.featurevector'))
        ImageFeatures.from_arrays([1, 2], [1, 2], np.ones((2, dim))).store(loc)
        data[loc] = [(1, 1, 0), (2, 2, 1)]
    with pytest.raises(ValueError, match=r'b\.featurevector: feature dimension 6'):
        MiniBatchTrainer()(_task(ImageLabels(data)), 1, [], 'LR')


def test_empty_set_is_refused(small_split):
    labels = TrainingTaskLabels(train=small_split.train, ref=small_split.ref,
                                val=ImageLabels())
    with pytest.raises(TrainingLabelsError, match="'val' set is empty"):
        MiniBatchTrainer()(labels, 1, [], 'LR')


def test_one_class_only_is_refused(tmp_path):
    loc = DataLocation('filesystem', str(tmp_path / 'one.featurevector'))
    ImageFeatures.from_arrays([1, 2], [1, 2], np.ones((2, 4))).store(loc)
    labels = _labels(loc, [(1, 1, 0), (2, 2, 0)])
    with pytest.raises(TrainingLabelsError, match='multiple classes'):
        MiniBatchTrainer()(_task(labels), 1, [], 'LR')


def test_previous_classifier_of_another_dimension(small_split):
    clf, _, _ = MiniBatchTrainer()(small_split, 1, [], 'LR')
    clf.n_features_in_ = 99
    with pytest.raises(ValueError, match='expects 99-dimensional'):
        MiniBatchTrainer()(small_split, 1, [clf], 'LR')


@pytest.mark.parametrize('kwargs, match', [
    ({'clf_type': 'SVM'}, 'clf_type'), ({'nbr_epochs': 0}, 'nbr_epochs')])
def test_bad_call_arguments(small_split, kwargs, match):
    call = {'labels': small_split, 'nbr_epochs': 1, 'pc_models': [],
            'clf_type': 'LR', **kwargs}
    with pytest.raises(ValueError, match=match):
        MiniBatchTrainer()(**call)


def test_train_classifier_task_stores_a_loadable_classifier(small_split,
                                                            tmp_path):
    from spacer.data_classes import ValResults
    from spacer.messages import ClassifyFeaturesMsg, TrainClassifierMsg
    from spacer.storage import load_classifier
    from spacer.tasks import classify_features, train_classifier

    model = DataLocation('filesystem', str(tmp_path / 'model.pkl'))
    valresult = DataLocation('filesystem', str(tmp_path / 'val.json'))
    msg = TrainClassifierMsg(
        job_token='t', trainer='minibatch', nbr_epochs=2, clf_type='MLP',
        labels=small_split, previous_model_locs=[], model_loc=model,
        valresult_loc=valresult)

    result = train_classifier(msg)

    clf = load_classifier(model)
    assert isinstance(clf, CalibratedClassifierCV)
    assert len(result.ref_accs) == 2
    assert ValResults.load(valresult).classes == clf.classes_.tolist()
    feature_loc = next(iter(small_split.val.keys()))
    scores = classify_features(ClassifyFeaturesMsg('c', feature_loc, model))
    assert scores.classes == [0, 1, 2, 3]
    assert all(abs(sum(s) - 1) < 1e-9 for _, _, s in scores.scores)
