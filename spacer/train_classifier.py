"""Trainers: the base class and the minibatch trainer (pyspacer's
``trainer_factory``, re-exported here, lives in ``spacer.interfaces``).

``MiniBatchTrainer`` trains what pyspacer's does (an MLP or an SGD logistic
regression, ``partial_fit`` over batches of ``batch_size`` labels, images
shuffled with the epoch number as seed, reference accuracy after each epoch,
sigmoid calibration on the reference set) but reads every feature file once
per task instead of once per epoch, trains the MLP with PyTorch and the LR
with a compiled copy of scikit-learn's SGD steps (see ``spacer.training``).
"""
from __future__ import annotations

import abc
import inspect
import os
import time
from logging import getLogger
from typing import Callable

import numpy as np

from spacer import config
from spacer.data_classes import ImageLabels, ValResults
from spacer.exceptions import (
    MessageError, TrainingLabelsError)
from spacer.extras import extra_imports
from spacer.image_labels import TrainingTaskLabels
from spacer.interfaces import ClassifierTrainerInterface
from spacer.interfaces import trainer_factory  # noqa: F401 (pyspacer exports it here)
from spacer.return_messages import TrainClassifierReturnMsg
from spacer.task_utils import check_label_types
from spacer.train_utils import calc_acc, evaluate_classifiers
from spacer.training.calibration import calibrate_prefit
from spacer.training.feature_arrays import LabelledArrays, load_labelled_arrays

with extra_imports():
    from sklearn.linear_model import SGDClassifier

logger = getLogger(__name__)

CLASSIFIER_TYPES = ('MLP', 'LR')

# Told after each epoch: (epoch number from 1, number of epochs, that
# epoch's ref accuracy). A long training reports its progress through it.
EpochCallback = Callable[[int, int, float], None]


def _epoch_done(ref_accs: list[float], nbr_epochs: int,
                on_epoch: EpochCallback | None) -> None:
    """Log the epoch just appended to ``ref_accs`` and tell ``on_epoch``."""
    logger.debug("Epoch %d, acc: %s", len(ref_accs) - 1, ref_accs[-1])
    if on_epoch is not None:
        on_epoch(len(ref_accs), nbr_epochs, ref_accs[-1])


class ClassifierTrainer(ClassifierTrainerInterface):
    """Trains a classifier from train/ref/val labels.

    Serializes as ``{"class_path": ..., <constructor parameters>}``;
    ``deserialize`` only builds classes on spacer's allow-list
    (``spacer.class_registry``).
    """

    @abc.abstractmethod
    def __call__(self, labels: TrainingTaskLabels, nbr_epochs: int,
                 pc_models: list, clf_type: str,
                 feature_cache_dir: str | None = None) \
            -> tuple[object, ValResults, TrainClassifierReturnMsg]:
        """(calibrated classifier, validation results, return message)"""

    def serialize(self) -> dict:
        cls = type(self)
        return {'class_path': f'{cls.__module__}.{cls.__name__}'}

    def __repr__(self) -> str:
        return str(self.serialize())

    def __eq__(self, other) -> bool:
        return isinstance(other, ClassifierTrainer) \
            and self.serialize() == other.serialize()


def _classes_and_targets(train: LabelledArrays, ref: LabelledArrays) \
        -> np.ndarray:
    classes = np.unique(ref.labels)
    unknown = set(np.unique(train.labels).tolist()) - set(classes.tolist())
    if unknown:
        raise TrainingLabelsError(
            f"The train set has classes that are missing from the ref set:"
            f" {sorted(unknown, key=str)[:10]}. Run preprocess_labels()"
            f" first.")
    if len(classes) < 2:
        raise TrainingLabelsError(
            f"Need multiple classes to do training. The ref set has"
            f" {len(classes)}.")
    return classes


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) \
        and not isinstance(value, (bool, np.bool_))


def _bad_parameter(name: str, expected: str, value: object) -> MessageError:
    return MessageError(
        f"MiniBatchTrainer: {name} must be {expected}, not {value!r}.")


def _int_at_least(name: str, value: object, minimum: int) -> int:
    if not _is_int(value) or value < minimum:
        raise _bad_parameter(
            name, "a positive integer" if minimum == 1
            else f"an integer of at least {minimum}", value)
    return int(value)


def _hidden_layer_sizes(value: object) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value \
            or not all(_is_int(n) and n > 0 for n in value):
        raise _bad_parameter('mlp_hidden_layer_sizes',
                             "null or a non-empty list of positive layer sizes", value)
    return tuple(int(n) for n in value)


# The MLP trains in float32 (PyTorch): a larger rate cannot even be set.
_MAX_LEARNING_RATE = float(np.finfo(np.float32).max)


def _learning_rate(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) \
            or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 <= value < _MAX_LEARNING_RATE:  # NaN fails too
        raise _bad_parameter(
            'mlp_learning_rate_init',
            f"null, 0 (pyspacer: the default) or a positive number below"
            f" {_MAX_LEARNING_RATE:.3g}", value)
    return value if isinstance(value, (int, float)) else float(value)


def _sgd_loss(value: object) -> str:
    losses = sorted(SGDClassifier.loss_functions)
    if not isinstance(value, str) or value not in losses:
        raise _bad_parameter('sgd_loss', f"one of {losses}", value)
    return value


def _sgd_average(value: object) -> bool | int:
    # scikit-learn: True averages from the start, an integer N from the
    # N-th sample on.
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if not _is_int(value) or value < 0:
        raise _bad_parameter('sgd_average',
                             "true, false or a non-negative integer", value)
    return int(value)


def _sgd_random_state(value: object) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value < 2 ** 32:
        raise _bad_parameter('sgd_random_state',
                             "null or an integer from 0 to 2**32 - 1", value)
    return int(value)


def _check_trained(clf, clf_type: str) -> None:
    """Refuse a classifier whose training diverged, before it is
    calibrated, evaluated (NaN scores) or stored."""
    if hasattr(clf, 'coefs_'):
        weights = [*clf.coefs_, *clf.intercepts_]
    else:
        weights = [np.asarray(clf.coef_), np.asarray(clf.intercept_)]
    if not all(np.isfinite(w).all() for w in weights):
        raise MessageError(
            f"Training the {clf_type} classifier diverged: its weights became"
            f" NaN or infinite. The trainer's learning rate is too high for"
            f" these features, or the feature values are too large.")


class MiniBatchTrainer(ClassifierTrainer):
    """pyspacer's default trainer: minibatches of feature vectors.

    MLP sizes: (100,) at learning rate 1e-3, or (200, 100) at 1e-4 from
    ``mlp_large_data_threshold`` training labels, unless given.
    LR: ``SGDClassifier(loss=sgd_loss, average=sgd_average,
    random_state=sgd_random_state)``.
    """

    def __init__(self,
                 batch_size: int = config.TRAINING_BATCH_LABEL_COUNT,
                 mlp_hidden_layer_sizes: tuple[int, ...] | None = None,
                 mlp_learning_rate_init: float | None = None,
                 mlp_large_data_threshold: int = 50000,
                 sgd_loss: str = 'log_loss',
                 sgd_average: bool = True,
                 sgd_random_state: int = 0):
        # Checked here, not when training starts: a bad value in a message
        # fails before any feature file is read (MessageError, a ValueError).
        self.batch_size = _int_at_least('batch_size', batch_size, 1)
        self.mlp_hidden_layer_sizes = _hidden_layer_sizes(
            mlp_hidden_layer_sizes)
        self.mlp_learning_rate_init = _learning_rate(mlp_learning_rate_init)
        self.mlp_large_data_threshold = _int_at_least(
            'mlp_large_data_threshold', mlp_large_data_threshold, 0)
        self.sgd_loss = _sgd_loss(sgd_loss)
        self.sgd_average = _sgd_average(sgd_average)
        self.sgd_random_state = _sgd_random_state(sgd_random_state)
        if self.mlp_learning_rate_init is not None \
                and self.mlp_hidden_layer_sizes is None:
            # pyspacer's rule: the rate goes with explicit layer sizes; the
            # automatic sizes bring their own rate.
            logger.warning(
                "MiniBatchTrainer: mlp_learning_rate_init=%r is ignored"
                " without mlp_hidden_layer_sizes (the automatic sizes use"
                " their own rate).", self.mlp_learning_rate_init)

    def serialize(self) -> dict:
        """class_path plus the parameters that differ from their defaults."""
        data = super().serialize()
        for name, param in inspect.signature(type(self).__init__) \
                .parameters.items():
            if name == 'self':
                continue
            value = getattr(self, name)
            if value != param.default:
                data[name] = list(value) if isinstance(value, tuple) \
                    else value
        return data

    def mlp_settings(self, train_label_count: int) \
            -> tuple[tuple[int, ...], float]:
        """Hidden layer sizes and learning rate for this many labels."""
        if self.mlp_hidden_layer_sizes is not None:
            return (self.mlp_hidden_layer_sizes,
                    self.mlp_learning_rate_init or 1e-3)
        if train_label_count >= self.mlp_large_data_threshold:
            return (200, 100), 1e-4
        return (100,), 1e-3

    def _train_mlp(self, train: LabelledArrays, ref: LabelledArrays,
                   classes: np.ndarray, nbr_epochs: int,
                   on_epoch: EpochCallback | None = None) \
            -> tuple[object, list[float]]:
        # Imported here, as below: torch and numba only when that model is trained.
        from spacer.training.torch_optim import torch_thread_count, torch_threads

        with torch_thread_count(torch_threads()):
            return self._train_torch_mlp(train, ref, classes, nbr_epochs,
                                         on_epoch)

    def _train_torch_mlp(self, train: LabelledArrays, ref: LabelledArrays,
                         classes: np.ndarray, nbr_epochs: int,
                         on_epoch: EpochCallback | None = None) \
            -> tuple[object, list[float]]:
        from spacer.training.torch_mlp import TorchMLP  # imports torch

        hidden, lr = self.mlp_settings(len(train))
        network = TorchMLP(train.feature_dim, classes, hidden, lr)
        ref_targets = np.searchsorted(classes, ref.labels)
        ref_accs = []
        calls = 0
        for epoch in range(nbr_epochs):
            for x, y in train.batches(seed=epoch, batch_size=self.batch_size):
                network.partial_fit(x, np.searchsorted(classes, y))
                calls += 1
            ref_accs.append(float(np.mean(
                network.predict_index(ref.features) == ref_targets)))
            _epoch_done(ref_accs, nbr_epochs, on_epoch)
        clf = network.to_sklearn(ref.features[:2], ref.labels[:2], calls)
        return clf, ref_accs

    def _train_lr(self, train: LabelledArrays, ref: LabelledArrays,
                  classes: np.ndarray, nbr_epochs: int,
                  on_epoch: EpochCallback | None = None) \
            -> tuple[object, list[float]]:
        if self.sgd_loss == 'log_loss':
            return self._train_fast_lr(train, ref, classes, nbr_epochs,
                                       on_epoch)
        # Other losses: scikit-learn itself. One-vs-rest problems are
        # independent (each has its own seed), so fitting them on all cores
        # changes nothing but the time; n_jobs goes back to pyspacer's None
        # before the classifier is stored.
        clf = SGDClassifier(loss=self.sgd_loss, average=self.sgd_average,
                            random_state=self.sgd_random_state,
                            n_jobs=os.cpu_count())
        ref_accs = []
        for epoch in range(nbr_epochs):
            for x, y in train.batches(seed=epoch, batch_size=self.batch_size):
                clf.partial_fit(x, y, classes=classes)
            ref_accs.append(calc_acc(ref.labels, clf.predict(ref.features)))
            _epoch_done(ref_accs, nbr_epochs, on_epoch)
        clf.set_params(n_jobs=None)
        return clf, ref_accs

    def _train_fast_lr(self, train: LabelledArrays, ref: LabelledArrays,
                       classes: np.ndarray, nbr_epochs: int,
                       on_epoch: EpochCallback | None = None) \
            -> tuple[object, list[float]]:
        """scikit-learn's SGD steps, compiled (spacer.training.fast_sgd)."""
        from spacer.training.fast_sgd import FastSGDLogistic, numba_threads  # numba
        from spacer.training.torch_optim import torch_threads  # imports torch

        model = FastSGDLogistic(classes, train.feature_dim,
                                average=self.sgd_average,
                                random_state=self.sgd_random_state)
        ref_accs = []
        with numba_threads(torch_threads()):
            for epoch in range(nbr_epochs):
                for x, y in train.batches(seed=epoch,
                                          batch_size=self.batch_size):
                    model.partial_fit(x, np.searchsorted(classes, y))
                ref_accs.append(calc_acc(
                    ref.labels, classes[model.predict_index(ref.features)]))
                _epoch_done(ref_accs, nbr_epochs, on_epoch)
        return model.to_sklearn(ref.features[:1]), ref_accs

    def _train(self, train_labels: ImageLabels, ref_labels: ImageLabels, nbr_epochs: int,
               clf_type: str, feature_cache_dir: str | None = None,
               on_epoch: EpochCallback | None = None) \
            -> tuple[object, list[float]]:
        """The classifier trained on ``train_labels`` and calibrated on
        ``ref_labels``, and its per-epoch ref accuracies (each also told to
        ``on_epoch`` as soon as it is known): pyspacer's training step,
        before any evaluation, which trainers and their tests call."""
        with config.log_entry_and_exit('loading of training data'):
            train = load_labelled_arrays(train_labels, feature_cache_dir)
        with train, config.log_entry_and_exit('loading of reference data'):
            ref = load_labelled_arrays(ref_labels, feature_cache_dir)
            with ref:
                if ref.feature_dim != train.feature_dim:
                    raise ValueError(
                        f"Train features are {train.feature_dim}-d but ref"
                        f" features are {ref.feature_dim}-d.")
                classes = _classes_and_targets(train, ref)
                with config.log_entry_and_exit('training using ' + clf_type):
                    fit = self._train_mlp if clf_type == 'MLP' \
                        else self._train_lr
                    clf, ref_accs = fit(train, ref, classes, nbr_epochs,
                                         on_epoch)
                _check_trained(clf, clf_type)
                with config.log_entry_and_exit('calibration'):
                    calibrated = calibrate_prefit(
                        clf, np.asarray(ref.features), ref.labels)
        return calibrated, ref_accs

    def __call__(self, labels: TrainingTaskLabels, nbr_epochs: int,
                 pc_models: list, clf_type: str,
                 feature_cache_dir: str | None = None, *,
                 on_epoch: EpochCallback | None = None):
        """Train, calibrate and evaluate. ``on_epoch(epoch, nbr_epochs,
        ref_acc)`` is called after each epoch (epochs counted from 1) with
        the ref accuracy that the return message's ``ref_accs`` will hold."""
        if on_epoch is not None and not callable(on_epoch):
            raise TypeError(
                f"on_epoch must be callable, not {type(on_epoch).__name__}.")
        if clf_type not in CLASSIFIER_TYPES:
            raise ValueError(
                f"clf_type must be one of {CLASSIFIER_TYPES},"
                f" not {clf_type!r}.")
        if isinstance(nbr_epochs, bool) or not isinstance(nbr_epochs, int) \
                or nbr_epochs < 1:
            raise ValueError(
                f"nbr_epochs must be a positive integer, not {nbr_epochs!r}.")
        for name in ('train', 'ref', 'val'):
            if len(labels[name]) == 0:
                raise TrainingLabelsError(f"The '{name}' set is empty.")
        check_label_types(labels)
        unknown = labels.val.classes_set - labels.ref.classes_set
        if unknown:
            raise TrainingLabelsError(
                f"The val set has classes that are missing from the ref set:"
                f" {sorted(unknown, key=str)[:10]}. Run preprocess_labels()"
                f" first.")
        started = time.time()
        clf, ref_accs = self._train(labels.train, labels.ref, nbr_epochs, clf_type,
                                    feature_cache_dir, on_epoch)
        classes = clf.classes_.tolist()

        # The new and the previous classifiers score the val set in one read.
        gts, ests, scores = evaluate_classifiers([clf, *pc_models],
                                                 labels.val)
        index = {c: i for i, c in enumerate(classes)}
        val_results = ValResults(
            scores=scores[0], gt=[index[g] for g in gts],
            est=[index[e] for e in ests[0]], classes=classes)
        return_msg = TrainClassifierReturnMsg(
            acc=calc_acc(gts, ests[0]),
            pc_accs=[calc_acc(gts, pc_ests) for pc_ests in ests[1:]],
            ref_accs=ref_accs,
            runtime=time.time() - started)
        return clf, val_results, return_msg

