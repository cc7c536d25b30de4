"""Loaded classifiers are cached by content: reused while the file is the same,
never served stale after it is overwritten."""
import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier

from spacer.data_classes import DataLocation
from spacer.storage import load_classifier, store_classifier
from spacer.training.calibration import calibrate_prefit


def _classifier(seed: int):
    rng = np.random.RandomState(seed)
    x, y = rng.randn(60, 4), np.repeat([0, 1, 2], 20)
    base = SGDClassifier(loss='log_loss', random_state=seed).fit(x, y)
    return calibrate_prefit(base, x, y)


@pytest.mark.parametrize('storage', ['filesystem', 'memory'])
def test_reused_until_overwritten(storage, tmp_path):
    loc = DataLocation(storage, str(tmp_path / 'clf.pkl'))
    first, second = _classifier(1), _classifier(2)
    store_classifier(loc, first)
    loaded = load_classifier(loc)
    assert load_classifier(loc) is loaded
    store_classifier(loc, second)
    reloaded = load_classifier(loc)
    assert reloaded is not loaded
    probe = np.ones((1, 4))
    assert np.allclose(reloaded.predict_proba(probe), second.predict_proba(probe))


def test_cache_clear():
    loc = DataLocation('memory', 'c.pkl')
    store_classifier(loc, _classifier(3))
    loaded = load_classifier(loc)
    load_classifier.cache_clear()
    assert load_classifier(loc) is not loaded
