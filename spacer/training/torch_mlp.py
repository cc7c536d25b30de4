"""scikit-learn's MLPClassifier, trained with PyTorch.

``MLPClassifier.partial_fit`` is the slow half of pyspacer's training: a
Python loop over NumPy float64 minibatches. This trains the very network
scikit-learn would build (ReLU hidden layers; softmax output, or one logistic
unit for two classes; Glorot-uniform initialisation; Adam with
scikit-learn's defaults; L2 penalty ``alpha``), with each ``partial_fit``
making one shuffled pass over its data in minibatches, as scikit-learn's
does, and then writes the weights into a real ``MLPClassifier``. The stored
classifier is scikit-learn's, so it pickles, loads and predicts without
torch.

Minibatches of ``minibatch_size`` rows (scikit-learn's "auto" is 200) run in
float32. (Measured here: bfloat16 autocast gave no gain at 200 rows, and
larger minibatches lost up to 10 points of accuracy at the same epochs, so
neither is used.)

torch is imported when a network is built, never on import.
"""
from __future__ import annotations

import math

import numpy as np

from spacer.extras import extra_imports
from spacer.training.torch_optim import SklearnAdam

with extra_imports():
    from sklearn.neural_network import MLPClassifier

SKLEARN_ALPHA = 1e-4


class TorchMLP:
    """One network, trained chunk by chunk like ``partial_fit``."""

    def __init__(self, n_features: int, classes: np.ndarray,
                 hidden_layer_sizes: tuple[int, ...],
                 learning_rate_init: float,
                 minibatch_size: int = 200,
                 seed: int = 0):
        import torch

        self.torch = torch
        self.classes = np.asarray(classes)
        self.hidden_layer_sizes = tuple(hidden_layer_sizes)
        self.learning_rate_init = learning_rate_init
        self.minibatch_size = minibatch_size
        self.binary = len(self.classes) == 2
        self.n_outputs = 1 if self.binary else len(self.classes)
        self.samples_seen = 0
        self.loss_curve: list[float] = []
        self._rng = np.random.RandomState(seed)

        generator = torch.Generator().manual_seed(seed)
        sizes = [n_features, *self.hidden_layer_sizes, self.n_outputs]
        self.weights = []
        self.biases = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            # scikit-learn's initialisation for ReLU networks.
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            w = (torch.rand(fan_in, fan_out, generator=generator) * 2 - 1) \
                * bound
            b = (torch.rand(fan_out, generator=generator) * 2 - 1) * bound
            self.weights.append(w.requires_grad_())
            self.biases.append(b.requires_grad_())
        self.optimizer = SklearnAdam(self.weights + self.biases,
                                     learning_rate_init)

    def _logits(self, x):
        h = x
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = self.torch.relu(h @ w + b)
        return h @ self.weights[-1] + self.biases[-1]

    def _loss(self, logits, target):
        """Mean log-loss of the minibatch (the L2 term goes in step)."""
        functional = self.torch.nn.functional
        if self.binary:
            return functional.binary_cross_entropy_with_logits(
                logits[:, 0], target.float())
        return functional.cross_entropy(logits, target)

    def partial_fit(self, x: np.ndarray, y_index: np.ndarray) -> None:
        """One shuffled pass over (x, y_index) in minibatches."""
        torch = self.torch
        x_all = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        y_all = torch.from_numpy(np.asarray(y_index, dtype=np.int64))
        order = torch.from_numpy(self._rng.permutation(len(y_all)))
        total = 0.0
        for start in range(0, len(order), self.minibatch_size):
            rows = order[start:start + self.minibatch_size]
            loss = self._loss(self._logits(x_all[rows]), y_all[rows])
            loss.backward()
            # scikit-learn's L2 term, 0.5 * alpha * |W|^2 / minibatch size,
            # added straight to the weight gradients.
            with torch.no_grad():
                for w in self.weights:
                    w.grad.add_(w, alpha=SKLEARN_ALPHA / len(rows))
            self.optimizer.step()
            total += float(loss.detach()) * len(rows)
        self.samples_seen += len(y_all)
        self.loss_curve.append(total / max(1, len(y_all)))

    def predict_index(self, x: np.ndarray, chunk: int = 8192) -> np.ndarray:
        """Index into classes of each row's most likely class."""
        torch = self.torch
        found = []
        with torch.no_grad():
            for start in range(0, len(x), chunk):
                block = torch.from_numpy(np.ascontiguousarray(
                    x[start:start + chunk], dtype=np.float32))
                logits = self._logits(block)
                if self.binary:
                    found.append((logits[:, 0] > 0).long().numpy())
                else:
                    found.append(logits.argmax(dim=1).numpy())
        return np.concatenate(found)

    def to_sklearn(self, x_prime: np.ndarray, y_prime: np.ndarray,
                   n_iter: int) -> MLPClassifier:
        """A fitted MLPClassifier holding these weights.

        scikit-learn's own ``partial_fit`` on a few rows (x_prime, y_prime)
        sets up every fitted attribute this scikit-learn version expects;
        the weights are then replaced, and the optimiser state of that call
        dropped (a later ``partial_fit`` starts a fresh one).
        """
        clf = MLPClassifier(hidden_layer_sizes=self.hidden_layer_sizes,
                            learning_rate_init=self.learning_rate_init)
        clf.partial_fit(x_prime, y_prime, classes=self.classes)
        clf.coefs_ = [w.detach().numpy().astype(np.float64)
                      for w in self.weights]
        clf.intercepts_ = [b.detach().numpy().astype(np.float64)
                           for b in self.biases]
        if self.loss_curve:
            clf.loss_curve_ = list(self.loss_curve)
            clf.loss_ = self.loss_curve[-1]
            clf.best_loss_ = min(self.loss_curve)
        clf.n_iter_ = n_iter
        clf.t_ = self.samples_seen
        if hasattr(clf, '_optimizer'):
            del clf._optimizer
        return clf
