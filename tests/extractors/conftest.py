"""
Shared EfficientNet fixtures: one set of realistic random weights per test
session (BatchNorm statistics calibrated, so features are ~0.1-1 in size,
not ~1e-13), saved as CoralNet saves them, and the reference network from
the efficientnet-pytorch package loaded with the same weights.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from spacer.extractors import warm


@pytest.fixture(autouse=True)
def _onnx_cache_in_tmp(tmp_path_factory, monkeypatch):
    """ONNX exports go to a per-session folder, not the user's cache."""
    folder = tmp_path_factory.getbasetemp() / 'xdg-cache'
    monkeypatch.setenv('XDG_CACHE_HOME', str(folder))


@pytest.fixture(autouse=True)
def _cold_models():
    warm.clear()
    yield
    warm.clear()


@pytest.fixture(scope='session')
def b0_state_dict():
    from spacer.extractors.default_weights import build_default_state_dict
    return build_default_state_dict(seed=1, n_patches=32)


@pytest.fixture(scope='session')
def b0_weights_file(b0_state_dict, tmp_path_factory):
    """A weights file as CoralNet's: {'net': state_dict} with DataParallel's
    'module.' prefixes; returns (path, sha256)."""
    import torch
    path = tmp_path_factory.mktemp('weights') / 'efficientnet_b0_ver1.pt'
    torch.save({'net': {'module.' + k: v for k, v in b0_state_dict.items()}},
               path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def b0_extractor(weights_file):
    """An EfficientNetExtractor over ``b0_weights_file``'s (path, sha256)."""
    from spacer.data_classes import DataLocation
    from spacer.extractors import EfficientNetExtractor
    path, digest = weights_file
    return EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(path))},
        data_hashes={'weights': digest})


@pytest.fixture(scope='session')
def reference_net(b0_state_dict):
    """efficientnet-pytorch's EfficientNet-B0, same weights."""
    from efficientnet_pytorch import EfficientNet
    net = EfficientNet.from_name('efficientnet-b0', num_classes=1275)
    net.load_state_dict(b0_state_dict)
    return net.eval()


@pytest.fixture(scope='session')
def reference_features(reference_net):
    """Features the way pyspacer computes them: ToTensor scaling, then the
    pooled output of the last convolution."""
    import torch

    def features(patches: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(patches))
        x = x.permute(0, 3, 1, 2).contiguous().float().div(255)
        out = []
        with torch.no_grad():
            for start in range(0, len(x), 16):
                maps = reference_net.extract_features(x[start:start + 16])
                out.append(reference_net._avg_pooling(maps).flatten(1))
        return torch.cat(out).numpy()
    return features


def padded_reference_crops(im, rowcols, size=224):
    """pyspacer's crop written out: whole-image reflect pad, then slices."""
    padded = np.pad(np.asarray(im.convert('RGB')),
                    ((size, size), (size, size), (0, 0)), mode='reflect')
    return np.stack([
        padded[int(r + size - size / 2):int(r + size - size / 2) + size,
               int(c + size - size / 2):int(c + size - size / 2) + size]
        for r, c in rowcols])


def border_points(height: int, width: int) -> list[tuple[int, int]]:
    """The four corners, a point on each border, the centre."""
    h, w = height - 1, width - 1
    points = [(0, 0), (0, w), (h, 0), (h, w), (0, w // 2), (h, w // 2),
              (h // 2, 0), (h // 2, w), (h // 2, w // 2)]
    return list(dict.fromkeys(points))
