"""
EfficientNetExtractor gives pyspacer's features: same crops, same scaling,
and a network equal to efficientnet-pytorch's EfficientNet-B0 (the code
pyspacer adapted) with the same weights, within 1e-4, on real photos and
on generated images of every Pillow mode, at points on every border.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spacer import config
from spacer.data_classes import DataLocation
from spacer.extractors import EfficientNetExtractor
from spacer.extractors.engines import OnnxEngine, TorchEngine, onnx_available
from spacer.extractors.utils import crop_patches
from tests.extractors.conftest import border_points
from tests.extractors.test_crop import MODES, image_of_mode

TOLERANCE = 1e-4
ENGINES = ['torch', 'onnxruntime'] if onnx_available() else ['torch']


@pytest.fixture
def use_engine(monkeypatch):
    """A function that switches the CPU engine (torch or onnxruntime)."""
    monkeypatch.setattr(config, 'DEVICE', 'cpu')

    def use(name: str) -> None:
        monkeypatch.setattr(
            'spacer.extractors.efficientnet.engine_setting', lambda: name)
    return use


@pytest.fixture
def extractor(b0_weights_file):
    path, digest = b0_weights_file
    return EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(path))},
        data_hashes={'weights': digest})


def sample_photos():
    from sklearn.datasets import load_sample_images
    return [Image.fromarray(a) for a in load_sample_images().images]


def assert_matches_reference(extractor, im, points, reference_features,
                             use_engine):
    """Every CPU engine's features equal the reference's within 1e-4."""
    expected = reference_features(crop_patches(im, points))
    results = []
    for name in ENGINES:
        use_engine(name)
        features, msg = extractor(im, points)
        assert features.feat.shape == (len(points), 1280)
        assert np.abs(features.feat - expected).max() <= TOLERANCE, name
        assert list(features.rows) == [p[0] for p in points]
        assert list(features.cols) == [p[1] for p in points]
        assert features.valid_rowcol and features.npoints == len(points)
        assert msg.runtime > 0
        results.append(features)
    return results


def test_real_photos(use_engine, extractor, reference_features):
    rng = np.random.default_rng(0)
    for im in sample_photos():   # 427 x 640 RGB
        h, w = im.height, im.width
        points = border_points(h, w) + [
            (int(r), int(c)) for r, c in zip(rng.integers(0, h, 6),
                                             rng.integers(0, w, 6))]
        features = assert_matches_reference(
            extractor, im, points, reference_features, use_engine)[0]
        # Realistic weights: features differ between points.
        assert features.feat.std(axis=0).mean() > 1e-3


def test_every_mode(use_engine, extractor, reference_features):
    for mode in MODES:
        im = image_of_mode(mode, 150, 170, seed=len(mode))
        assert_matches_reference(
            extractor, im, border_points(150, 170)[:4], reference_features,
            use_engine)


def test_images_smaller_than_a_patch(use_engine, extractor,
                                     reference_features):
    for height, width in [(1, 1), (3, 5), (100, 223), (224, 224)]:
        im = image_of_mode('RGB', height, width, seed=height + width)
        assert_matches_reference(
            extractor, im, border_points(height, width)[:6],
            reference_features, use_engine)


def test_many_points_span_batches(use_engine, extractor, reference_features):
    im = sample_photos()[1]
    points = [(r, (7 * r) % im.width) for r in range(0, 420, 17)]  # 25
    assert_matches_reference(extractor, im, points, reference_features,
                             use_engine)


@pytest.mark.parametrize('engine', ENGINES)
def test_duplicate_points_give_identical_vectors(use_engine, extractor,
                                                 engine):
    use_engine(engine)
    im = sample_photos()[0]
    features, _ = extractor(im, [(10, 20), (200, 300), (10, 20)])
    np.testing.assert_array_equal(features.feat[0], features.feat[2])
    assert list(features.rows) == [10, 200, 10]


@pytest.mark.parametrize('engine', ENGINES)
def test_engine_in_use(use_engine, extractor, engine):
    use_engine(engine)
    model, device, _ = extractor.warm_model()
    assert device == 'cpu'
    expected = OnnxEngine if engine == 'onnxruntime' else TorchEngine
    assert isinstance(model, expected)


def test_patches_to_features_keeps_pyspacer_hook(extractor,
                                                 reference_features):
    im = sample_photos()[0]
    patches = list(crop_patches(im, [(0, 0), (100, 100)]))
    feats, remote = extractor.patches_to_features(patches)
    assert remote is False
    assert isinstance(feats, list) and len(feats[0]) == 1280
    assert np.abs(np.array(feats) - reference_features(np.stack(patches))
                  ).max() <= TOLERANCE
