"""scikit-learn's SGD logistic regression, compiled, with its exact steps.

pyspacer trains 'LR' as ``SGDClassifier(loss='log_loss', average=True,
random_state=0).partial_fit`` per minibatch. Nearly all of that time is
scikit-learn's per-sample Cython loop, one one-vs-rest problem after the
other on one core, through indexed (not vectorizable) reads.

``FastSGDLogistic`` takes the same steps, sample for sample: the same
per-problem shuffles (scikit-learn's seeds and its xorshift Fisher-Yates),
the 'optimal' learning rate, L2 decay through a weight scale, averaged
weights and intercepts, and a weight-scale reset at the end of every
``partial_fit``. Only the arithmetic differs in rounding (vectorized dot
products, float32 features read as float64). The loop is compiled with
numba, vectorized over features and run in parallel over the one-vs-rest
problems (they are independent). ``to_sklearn`` then writes the result into
a fitted ``SGDClassifier``, so stored classifiers stay plain scikit-learn.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from spacer.extras import extra_imports

with extra_imports():
    import numba
    from numba import njit, prange
    from sklearn.linear_model import SGDClassifier
    from sklearn.utils import check_random_state

# scikit-learn's constants (linear_model/_stochastic_gradient.py, utils/).
_MAX_INT = np.iinfo(np.int32).max
_ALPHA_DEFAULT = 1e-4
_RESET_WSCALE_BELOW = 1e-9   # float64 weights
_MAX_DLOSS = 1e12
_DEFAULT_RAND_SEED = 1       # what scikit-learn's rand_r uses for seed 0
_FASTMATH = {'reassoc', 'contract'}   # vectorized sums; NaN/inf kept


@contextmanager
def numba_threads(threads: int):
    """Run the block with numba's parallel loops on `threads` threads (at
    most the ones it started with)."""
    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _shuffle_seed(random_state) -> int:
    """The seed one binary fit shuffles with: make_dataset draws one number
    for the dataset, then fit_binary draws the shuffle seed."""
    rng = check_random_state(random_state)
    rng.randint(1, np.iinfo(np.int32).max)
    return int(rng.randint(_MAX_INT))


def problem_shuffle_seeds(n_problems: int, random_state) -> list[int]:
    """Shuffle seeds of one partial_fit call, one per one-vs-rest problem
    (a single problem for two classes), drawn as scikit-learn draws them."""
    if n_problems == 1:
        return [_shuffle_seed(random_state)]
    seeds = check_random_state(random_state).randint(_MAX_INT,
                                                     size=n_problems)
    return [_shuffle_seed(seed) for seed in seeds]


@njit(cache=True)
def _fisher_yates(n: int, seed: int) -> np.ndarray:
    """SequentialDataset.shuffle: Fisher-Yates with scikit-learn's xorshift
    rand_r on uint32."""
    order = np.arange(n).astype(np.int32)
    state = np.uint32(seed)
    mask = np.uint32(0xFFFFFFFF)
    for i in range(n - 1):
        if state == 0:
            state = np.uint32(_DEFAULT_RAND_SEED)
        state = np.uint32((state ^ (state << np.uint32(13))) & mask)
        state = np.uint32(state ^ (state >> np.uint32(17)))
        state = np.uint32((state ^ (state << np.uint32(5))) & mask)
        j = i + (state % np.uint32(2147483648)) % np.uint32(n - i)
        order[i], order[j] = order[j], order[i]
    return order


def shuffle_orders(n_samples: int, seeds: list[int]) -> np.ndarray:
    """(problems, n_samples) visiting order of every problem."""
    return np.stack([_fisher_yates(n_samples, s) for s in seeds])


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _sgd_pass(x, targets, orders, positives, coef, avg_coef, intercept_in,
              avg_intercept_in, intercept_out, avg_intercept_out, t_start,
              alpha, optimal_init, average):
    """One partial_fit pass of every problem over its own sample order.

    Problem k learns ``targets == positives[k]``. Weights are kept as
    ``wscale * w`` and averages as ``(aw + a * w) / b`` (scikit-learn's
    WeightVector) and written back in full at the end; the intercepts go
    to the *_out arrays (the caller does scikit-learn's bookkeeping).
    """
    n_problems, n_features = coef.shape
    n_samples = x.shape[0]
    for k in prange(n_problems):
        w = coef[k]
        aw = avg_coef[k]
        b0 = intercept_in[k]
        ab = avg_intercept_in[k]
        wscale = 1.0
        avg_a = 0.0
        avg_b = 1.0
        t = t_start
        # Each step's weight update also takes the next sample's dot
        # product (with the updated weights): one pass over w per sample.
        row = orders[k, 0]
        dot = 0.0
        for j in range(n_features):
            dot += w[j] * x[row, j]
        for i in range(n_samples):
            xi = x[row]
            p = dot * wscale + b0
            eta = 1.0 / (alpha * (optimal_init + t - 1.0))
            y = 1.0 if targets[row] == positives[k] else 0.0
            # scikit-learn's half-binomial gradient, expit(p) - y.
            if p > -37.0:
                e = np.exp(-p)
                dloss = ((1.0 - y) - y * e) / (1.0 + e)
            else:
                dloss = np.exp(p) - y
            dloss = min(max(dloss, -_MAX_DLOSS), _MAX_DLOSS)
            update = -eta * dloss

            # L2 decay as a scale; weights folded in when it gets small.
            wscale *= max(0.0, 1.0 - eta * alpha)
            if wscale < _RESET_WSCALE_BELOW:
                if average > 0:
                    for j in range(n_features):
                        aw[j] = (aw[j] + avg_a * w[j]) / avg_b
                    avg_a = 0.0
                    avg_b = 1.0
                for j in range(n_features):
                    w[j] *= wscale
                wscale = 1.0

            averaging = 0 < average <= t
            step_w = update / wscale
            step_aw = avg_a * (-update / wscale) if averaging else 0.0
            next_row = orders[k, i + 1] if i + 1 < n_samples else row
            xn = x[next_row]
            dot = 0.0
            if update != 0.0:
                for j in range(n_features):
                    wj = w[j] + xi[j] * step_w
                    w[j] = wj
                    aw[j] += xi[j] * step_aw
                    dot += wj * xn[j]
            else:
                for j in range(n_features):
                    dot += w[j] * xn[j]
            b0 += update

            if averaging:
                seen = t - average + 1.0
                mu = 1.0 / seen
                if seen > 1.0:
                    avg_b /= 1.0 - mu
                avg_a += mu * avg_b * wscale
                ab += (b0 - ab) / seen
            t += 1.0
            row = next_row
        # scikit-learn's reset_wscale at the end of the pass.
        if average > 0:
            for j in range(n_features):
                aw[j] = (aw[j] + avg_a * w[j]) / avg_b
        for j in range(n_features):
            w[j] *= wscale
        intercept_out[k] = b0
        avg_intercept_out[k] = ab


class FastSGDLogistic:
    """``SGDClassifier(loss='log_loss', alpha, average, random_state)``
    trained with ``partial_fit`` only: the same steps, compiled.

    Targets are class indices into ``classes`` (sorted, as scikit-learn
    sorts them). The intercept bookkeeping between calls follows
    scikit-learn's, quirks included: with averaging on, a one-vs-rest fit
    restarts every call from the intercepts of the first call and its
    ``intercept_`` ends up holding the last call's plain (not averaged)
    intercepts; a two-class fit restarts its intercept from 0.
    """

    def __init__(self, classes: np.ndarray, n_features: int,
                 average: int | bool = True, random_state=0,
                 alpha: float = _ALPHA_DEFAULT):
        if len(classes) < 2:
            raise ValueError("Need at least two classes.")
        if not isinstance(average, (bool, int, np.integer)) or average < 0:
            raise ValueError(f"average must be a bool or a non-negative"
                             f" integer, not {average!r}.")
        self.classes = np.asarray(classes)
        self.average_param = average
        self.average = int(average)
        self.random_state = random_state
        self.alpha = float(alpha)
        self.n_problems = 1 if len(classes) == 2 else len(classes)
        # A two-class fit learns class 1 against class 0.
        self.positives = np.array([1]) if self.n_problems == 1 \
            else np.arange(self.n_problems)
        shape = (self.n_problems, n_features)
        self.coef = np.zeros(shape)
        self.avg_coef = np.zeros(shape)
        # scikit-learn's intercept_, _standard_intercept, _average_intercept
        # (the first two start as one array).
        self.std_intercept = np.zeros(self.n_problems)
        self.avg_intercept = np.zeros(self.n_problems)
        self.intercept_ = self.std_intercept
        self.t = 1.0
        self.calls = 0
        # scikit-learn's 'optimal' schedule starts at eta0 = typw / max(1,
        # gradient(1, -typw)); the log-loss gradient there is below 1.
        typw = np.sqrt(1.0 / np.sqrt(self.alpha))
        self.optimal_init = 1.0 / (typw * self.alpha)
        self._orders: dict[int, np.ndarray] = {}

    def _orders_for(self, n_samples: int) -> np.ndarray:
        # An int random_state gives every call the same seeds, hence the
        # same orders for the same batch size; anything else draws anew.
        cacheable = isinstance(self.random_state, (int, np.integer))
        if cacheable and n_samples in self._orders:
            return self._orders[n_samples]
        seeds = problem_shuffle_seeds(self.n_problems, self.random_state)
        orders = shuffle_orders(n_samples, seeds)
        if cacheable:
            self._orders[n_samples] = orders
        return orders

    def partial_fit(self, x: np.ndarray, targets: np.ndarray) -> None:
        """One pass over (x, class index) in scikit-learn's order."""
        x = np.ascontiguousarray(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        if x.ndim != 2 or x.shape[1] != self.coef.shape[1]:
            raise ValueError(f"Expected features of shape (n, "
                             f"{self.coef.shape[1]}), got {x.shape}.")
        targets = np.ascontiguousarray(targets, dtype=np.int64)
        if len(targets) != len(x) or len(x) == 0:
            raise ValueError(f"{len(x)} feature rows but {len(targets)}"
                             f" targets.")
        start = self.std_intercept if self.average > 0 else self.intercept_
        intercept = np.empty(self.n_problems)
        avg_intercept = np.empty(self.n_problems)
        _sgd_pass(x, targets, self._orders_for(len(x)), self.positives,
                  self.coef, self.avg_coef, start, self.avg_intercept,
                  intercept, avg_intercept, self.t, self.alpha,
                  self.optimal_init, self.average)
        if not (np.isfinite(intercept).all() and np.isfinite(self.coef).all()):
            raise ValueError(
                "Floating-point under-/overflow occurred in SGD training"
                " (non-finite features, or features too large: scaling"
                " them might help).")
        if self.average > 0:
            self.avg_intercept[:] = avg_intercept
        self.t += len(x)
        self.calls += 1
        if self.n_problems > 1:        # _fit_multiclass
            self.intercept_[:] = intercept
            if self.average > 0 and self.average <= self.t - 1:
                self.intercept_ = self.avg_intercept
        elif self.average > 0:         # _fit_binary
            if self.average <= self.t - 1:
                self.intercept_ = self.avg_intercept
            else:
                self.std_intercept = intercept
                self.intercept_ = self.std_intercept
        else:
            self.intercept_ = intercept

    @property
    def coef_(self) -> np.ndarray:
        averaged = 0 < self.average <= self.t - 1
        return self.avg_coef if averaged else self.coef

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """scikit-learn's decision_function, (n, problems)."""
        return np.asarray(x, np.float64) @ self.coef_.T + self.intercept_

    def predict_index(self, x: np.ndarray) -> np.ndarray:
        scores = self.decision_function(x)
        if self.n_problems == 1:
            return (scores[:, 0] > 0).astype(np.int64)
        return scores.argmax(axis=1)

    def to_sklearn(self, x_example: np.ndarray) -> SGDClassifier:
        """A fitted SGDClassifier holding this state, as its own
        partial_fit calls would have left it (x_example: a feature row to
        initialise it with)."""
        if self.calls == 0:
            raise ValueError("Not trained yet.")
        clf = SGDClassifier(loss='log_loss', alpha=self.alpha,
                            average=self.average_param,
                            random_state=self.random_state)
        x_example = np.asarray(x_example, np.float64)[:1]
        clf.partial_fit(x_example, self.classes[:1], classes=self.classes)
        flat = self.n_problems == 1       # scikit-learn keeps these 1-d
        shape = (-1,) if flat else self.coef.shape
        standard = self.coef.copy().reshape(shape)
        intercept = self.intercept_.copy()
        if self.average > 0:
            clf._standard_coef = standard
            clf._average_coef = self.avg_coef.copy().reshape(shape)
            clf._average_intercept = self.avg_intercept.copy()
            clf._standard_intercept = self.std_intercept.copy()
            if self.intercept_ is self.avg_intercept:
                intercept = clf._average_intercept
            elif self.intercept_ is self.std_intercept:
                intercept = clf._standard_intercept
            averaged = self.average <= self.t - 1
            coef = clf._average_coef if averaged else clf._standard_coef
        else:
            coef = standard
        clf.coef_ = coef.reshape(self.n_problems, -1)
        clf.intercept_ = intercept
        clf.t_ = self.t
        clf.n_iter_ = 1
        return clf
