"""Weights-free default EfficientNet weights: deterministic, and features
that tell textures apart."""
from __future__ import annotations

import hashlib
import os

import numpy as np

from spacer.extractors.default_weights import (
    build_default_state_dict, default_extractor, texture_patches,
    write_default_weights)
from spacer.extractors.efficientnet_net import load_b0


def test_deterministic_for_a_seed(tmp_path):
    first = write_default_weights(tmp_path / 'a.pt', seed=3, n_patches=12)
    second = write_default_weights(tmp_path / 'b.pt', seed=3, n_patches=12)
    other = write_default_weights(tmp_path / 'c.pt', seed=4, n_patches=12)
    assert first == second != other
    assert first == hashlib.sha256((tmp_path / 'a.pt').read_bytes()) \
        .hexdigest()


def _texture_class(kind: int, n: int, rng) -> np.ndarray:
    """Three textures a coral survey could plausibly show: stripes, fine
    grain, coarse patches."""
    yy, xx = np.mgrid[0:224, 0:224]
    out = []
    for _ in range(n):
        if kind == 0:
            base = (np.sin(xx / 3.0 + rng.uniform(0, 6)) > 0) * 180 \
                + rng.normal(0, 20, (224, 224))
        elif kind == 1:
            base = rng.normal(120, 50, (224, 224))
        else:
            base = np.kron(rng.normal(120, 50, (8, 8)), np.ones((28, 28))) \
                + rng.normal(0, 10, (224, 224))
        rgb = np.stack([base, base * 0.8 + 20, base * 0.6 + 40], axis=-1)
        out.append(np.clip(rgb, 0, 255).astype(np.uint8))
    return np.stack(out)


def test_features_separate_distinct_textures(b0_state_dict):
    import torch
    from sklearn.linear_model import LogisticRegression

    net = load_b0({'net': b0_state_dict})
    rng = np.random.default_rng(5)
    feats, labels = [], []
    for kind in range(3):
        patches = _texture_class(kind, 16, rng)
        with torch.no_grad():
            x = torch.from_numpy(patches).permute(0, 3, 1, 2).float() / 255
            feats.append(net(x).numpy())
        labels += [kind] * 16
    x, y = np.concatenate(feats), np.array(labels)
    assert 0.05 < np.abs(x).mean() < 10    # not vanishing, not exploding
    train = np.arange(len(y)) % 2 == 0
    clf = LogisticRegression(max_iter=2000).fit(x[train], y[train])
    assert clf.score(x[~train], y[~train]) == 1.0


def test_uncalibrated_network_is_useless_and_calibration_fixes_it():
    import torch
    from spacer.extractors.efficientnet_net import EfficientNetB0
    torch.manual_seed(0)
    raw = EfficientNetB0().eval()
    calibrated = load_b0({'net': build_default_state_dict(0, 12)})
    x = torch.from_numpy(texture_patches(4, seed=9)).permute(0, 3, 1, 2) \
        .float() / 255
    with torch.no_grad():
        assert raw(x).abs().max() < 1e-6
        assert calibrated(x).abs().mean() > 0.05


def test_default_extractor_reuses_its_file(tmp_path, monkeypatch):
    monkeypatch.setattr(
        'spacer.extractors.default_weights.build_default_state_dict',
        lambda seed, n: build_default_state_dict(seed, 8))
    first = default_extractor(tmp_path, seed=2)
    path = first.data_locations['weights'].key
    mtime = os.stat(path).st_mtime_ns
    second = default_extractor(tmp_path, seed=2)
    assert second == first and os.stat(path).st_mtime_ns \
        == mtime
    assert first.data_hashes['weights'] == hashlib.sha256(
        open(path, 'rb').read()).hexdigest()


def test_texture_patches_shape_and_range():
    patches = texture_patches(12, seed=1)
    assert patches.shape == (12, 224, 224, 3) and patches.dtype == np.uint8
    assert len({p.tobytes() for p in patches}) == 12
