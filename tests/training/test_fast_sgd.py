"""FastSGDLogistic takes scikit-learn's SGDClassifier.partial_fit steps.

Small, well-conditioned problems, so float rounding differences (vectorized
sums, amplified a little by SGD) stay far below the tolerance.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier

from spacer.training.calibration import calibrate_prefit
from spacer.training.fast_sgd import FastSGDLogistic, numba_threads

ATTRIBUTES = ('coef_', 'intercept_', '_standard_coef', '_standard_intercept',
              '_average_coef', '_average_intercept')


def make_data(n_classes: int, n: int = 240, dim: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, size=n)
    centers = rng.normal(size=(n_classes, dim))
    x = (centers[y] + 1.5 * rng.normal(size=(n, dim))).astype(np.float32)
    return x, y


def fit_both(x, y, classes, batches, average=True, random_state=0):
    # random_state: an int, or a function making a RandomState for each.
    def state():
        return random_state() if callable(random_state) else random_state

    sk = SGDClassifier(loss='log_loss', average=average,
                       random_state=state())
    fast = FastSGDLogistic(classes, x.shape[1], average=average,
                           random_state=state())
    start = 0
    for size in batches:
        xb, yb = x[start:start + size], y[start:start + size]
        sk.partial_fit(xb.astype(np.float64), classes[yb], classes=classes)
        fast.partial_fit(xb, yb)
        start += size
    return sk, fast


def assert_same_state(ours: SGDClassifier, theirs: SGDClassifier) -> None:
    for name in ATTRIBUTES:
        if hasattr(theirs, name):
            np.testing.assert_allclose(
                getattr(ours, name), getattr(theirs, name), rtol=1e-5,
                atol=1e-7, err_msg=name)
            assert np.shape(getattr(ours, name)) == \
                np.shape(getattr(theirs, name)), name
    assert ours.t_ == theirs.t_
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)


@pytest.mark.parametrize('n_classes', [2, 3, 5])
@pytest.mark.parametrize('average', [True, False, 100])
def test_same_weights_as_sklearn_partial_fit(n_classes, average):
    # Unequal batches: each batch size has its own shuffle; average=100
    # switches to the averaged weights inside the second call.
    x, y = make_data(n_classes)
    classes = np.arange(n_classes)
    sk, fast = fit_both(x, y, classes, [80, 80, 50, 30], average=average)
    assert_same_state(fast.to_sklearn(x), sk)


def test_str_classes_and_random_state_instances():
    # A RandomState instance draws new shuffles every call, as in sklearn.
    x, y = make_data(4, seed=1)
    classes = np.array(['a', 'b', 'c', 'd'])
    sk, fast = fit_both(x, y, classes, [120, 120],
                        random_state=lambda: np.random.RandomState(7))
    fast_np = fast.to_sklearn(x)
    assert_same_state(fast_np, sk)
    np.testing.assert_array_equal(fast_np.predict(x), sk.predict(x))


def test_classifier_continues_training_and_calibrates_like_sklearn():
    x, y = make_data(3, n=300, seed=2)
    classes = np.arange(3)
    sk, fast = fit_both(x, y, classes, [100, 100])
    ours = pickle.loads(pickle.dumps(fast.to_sklearn(x)))
    np.testing.assert_allclose(ours.decision_function(x),
                               sk.decision_function(x), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(fast.predict_index(x),
                                  np.searchsorted(classes, sk.predict(x)))
    # The whole partial_fit state is there: one more call agrees too.
    ours.partial_fit(x[200:].astype(np.float64), y[200:])
    sk.partial_fit(x[200:].astype(np.float64), y[200:])
    assert_same_state(ours, sk)

    calibrated = [calibrate_prefit(clf, x, y) for clf in (ours, sk)]
    np.testing.assert_allclose(calibrated[0].predict_proba(x),
                               calibrated[1].predict_proba(x), atol=1e-7)


def test_parallel_problems_give_the_same_weights():
    x, y = make_data(6, n=300, seed=3)
    runs = []
    for threads in (1, 2):
        fast = FastSGDLogistic(np.arange(6), x.shape[1])
        with numba_threads(threads):
            fast.partial_fit(x, y)
        runs.append(fast.to_sklearn(x).coef_)
    np.testing.assert_array_equal(runs[0], runs[1])


def test_bad_input():
    x, y = make_data(3)
    with pytest.raises(ValueError, match='two classes'):
        FastSGDLogistic(np.array([0]), 6)
    with pytest.raises(ValueError, match='average'):
        FastSGDLogistic(np.arange(3), 6, average=-1)
    fast = FastSGDLogistic(np.arange(3), 6)
    with pytest.raises(ValueError, match='Not trained'):
        fast.to_sklearn(x)
    with pytest.raises(ValueError, match=r'shape \(n, 6\)'):
        fast.partial_fit(x[:, :5], y)
    with pytest.raises(ValueError, match='targets'):
        fast.partial_fit(x, y[:10])
    bad = x[:4].copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match='Floating-point'):
        fast.partial_fit(bad, y[:4])
