"""The trainer tells a callback of each finished epoch (for progress bars)."""
from __future__ import annotations

import numpy as np
import pytest

from spacer.data_classes import DataLocation
from spacer.messages import TrainClassifierMsg
from spacer.train_classifier import ClassifierTrainer, MiniBatchTrainer


@pytest.mark.parametrize('clf_type, trainer', [
    ('MLP', MiniBatchTrainer()),
    ('LR', MiniBatchTrainer()),                       # compiled SGD steps
    ('LR', MiniBatchTrainer(sgd_loss='modified_huber')),  # scikit-learn's
])
def test_on_epoch_hears_each_epoch_with_the_returned_ref_accs(
        small_split, clf_type, trainer):
    heard = []
    clf, _, msg = trainer(small_split, 3, [], clf_type,
                          on_epoch=lambda *args: heard.append(args))

    assert [(e, n) for e, n, _ in heard] == [(1, 3), (2, 3), (3, 3)]
    assert [acc for _, _, acc in heard] == msg.ref_accs
    # Listening changes nothing that is trained.
    quiet_clf, _, quiet_msg = trainer(small_split, 3, [], clf_type)
    assert quiet_msg.ref_accs == msg.ref_accs and quiet_msg.acc == msg.acc
    x = np.random.default_rng(1).random((5, 32))
    np.testing.assert_allclose(clf.predict_proba(x), quiet_clf.predict_proba(x))


def test_a_callback_that_is_not_callable_is_refused(small_split):
    with pytest.raises(TypeError, match='on_epoch must be callable'):
        MiniBatchTrainer()(small_split, 1, [], 'LR', on_epoch=5)


def test_an_error_in_the_callback_stops_training(small_split):
    def stop(epoch, epochs, acc):
        if epoch == 2:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        MiniBatchTrainer()(small_split, 5, [], 'LR', on_epoch=stop)


class FourArgumentTrainer(MiniBatchTrainer):
    """A user's pyspacer-style trainer: it takes only the four arguments."""

    def __call__(self, labels, nbr_epochs, pc_models, clf_type):
        return super().__call__(labels, nbr_epochs, pc_models, clf_type)


def _message(split, tmp_path, trainer) -> TrainClassifierMsg:
    msg = TrainClassifierMsg(
        job_token='t', trainer='minibatch', nbr_epochs=2, clf_type='LR',
        labels=split, previous_model_locs=[],
        model_loc=DataLocation('filesystem', str(tmp_path / 'model.pkl')),
        valresult_loc=DataLocation('filesystem', str(tmp_path / 'val.json')))
    msg.trainer = trainer
    return msg


def test_the_task_passes_on_epoch_to_spacers_trainer(small_split, tmp_path):
    from spacer.tasks import train_classifier
    heard = []
    result = train_classifier(_message(small_split, tmp_path, MiniBatchTrainer()),
                              on_epoch=lambda *args: heard.append(args))
    assert [acc for _, _, acc in heard] == result.ref_accs
    assert [e for e, _, _ in heard] == [1, 2]


def test_the_task_leaves_a_four_argument_trainer_alone(small_split, tmp_path):
    from spacer.tasks import train_classifier
    heard = []
    result = train_classifier(
        _message(small_split, tmp_path, FourArgumentTrainer()),
        on_epoch=lambda *args: heard.append(args))
    assert len(result.ref_accs) == 2 and heard == []


class WrappingTrainer(ClassifierTrainer):
    """A user's trainer built on ClassifierTrainer, also four arguments."""

    def __call__(self, labels, nbr_epochs, pc_models, clf_type):
        return MiniBatchTrainer()(labels, nbr_epochs, pc_models, clf_type)


def test_the_task_leaves_a_user_trainer_alone(small_split, tmp_path):
    from spacer.tasks import train_classifier
    heard = []
    result = train_classifier(_message(small_split, tmp_path, WrappingTrainer()),
                              on_epoch=lambda *args: heard.append(args))
    assert len(result.ref_accs) == 2 and heard == []
