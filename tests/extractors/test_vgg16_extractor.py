"""
VGG16CaffeExtractor end to end: Caffe files on disk, a real photo, points
on the borders, features against the numpy forward pass.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from spacer import config
from spacer.data_classes import DataLocation
from spacer.exceptions import HashMismatchError
from spacer.extractors import warm
from spacer.extractors.base import FeatureExtractor
from spacer.extractors.caffe_proto import CaffeFormatError
from spacer.extractors.utils import crop_patches
from spacer.extractors.vgg16 import VGG16CaffeExtractor
from tests.extractors.test_vgg16_files import (
    SMALL, VGGConfig, caffemodel_bytes, np_vgg_forward, random_weights)


@pytest.fixture(autouse=True)
def _cold_models():
    warm.clear()
    yield
    warm.clear()


def _write_files(tmp_path, config, weights, legacy=False):
    definition = tmp_path / 'deploy.prototxt'
    definition.write_text(config.prototxt())
    model = tmp_path / 'vgg16.caffemodel'
    model.write_bytes(caffemodel_bytes(config, weights, legacy=legacy))
    return definition, model


def _extractor(definition, model, **kwargs):
    return VGG16CaffeExtractor(data_locations=dict(
        definition=DataLocation('filesystem', str(definition)),
        weights=DataLocation('filesystem', str(model))), **kwargs)


def _photo() -> Image.Image:
    from sklearn.datasets import load_sample_images
    china = load_sample_images().images[0]  # 427 x 640 RGB
    return Image.fromarray(china[40:340, 100:480])  # 300 x 380


def _pyspacer_crops(im: Image.Image, rowcols, size=224):
    """pyspacer's geometry, written out: reflect-pad the whole image by
    the crop size and slice so the point sits at int(center - size / 2)."""
    padded = np.pad(np.asarray(im.convert('RGB')),
                    ((size, size), (size, size), (0, 0)), mode='reflect')
    out = []
    for row, col in rowcols:
        top, left = int(row + size - size / 2), int(col + size - size / 2)
        out.append(padded[top:top + size, left:left + size])
    return np.stack(out)


ROWCOLS = [(0, 0), (0, 379), (299, 0), (299, 379), (150, 190), (0, 200),
           (299, 10), (120, 0), (5, 379), (150, 190), (77, 311), (250, 42)]


@pytest.mark.parametrize('style,legacy', [('v1', True), ('v2', False)])
def test_features_of_a_photo_match_numpy(tmp_path, style, legacy):
    cfg = VGGConfig(style=style, **SMALL)
    weights = random_weights(cfg, seed=7)
    extractor = _extractor(*_write_files(tmp_path, cfg, weights, legacy))
    im = _photo()

    features, msg = extractor(im, ROWCOLS)

    patches = _pyspacer_crops(im, ROWCOLS)
    np.testing.assert_array_equal(crop_patches(im, ROWCOLS), patches)
    want = np_vgg_forward(cfg, weights, patches)
    assert features.npoints == len(ROWCOLS)
    assert features.feature_dim == SMALL['fc']
    assert [(int(r), int(c)) for r, c in zip(features.rows, features.cols)] \
        == ROWCOLS
    assert np.abs(features.feat - want).max() <= 1e-4
    # Duplicate points give duplicate vectors (to float32 rounding: the
    # BLAS kernels may block rows differently); distinct ones differ.
    np.testing.assert_allclose(features.feat[4], features.feat[9],
                               rtol=0, atol=1e-6)
    assert np.abs(features.feat[0] - features.feat[4]).max() > 1e-2
    assert msg.extractor_loaded_remotely is False
    assert msg.runtime > 0


def test_grayscale_image(tmp_path):
    cfg = VGGConfig(**SMALL)
    weights = random_weights(cfg, seed=8)
    extractor = _extractor(*_write_files(tmp_path, cfg, weights))
    im = _photo().convert('L').resize((90, 60))  # smaller than a patch
    rowcols = [(0, 0), (59, 89), (30, 45)]
    features, _ = extractor(im, rowcols)
    want = np_vgg_forward(cfg, weights, _pyspacer_crops(im, rowcols))
    assert np.abs(features.feat - want).max() <= 1e-4


def test_serializes_under_pyspacers_class_path(tmp_path):
    cfg = VGGConfig(**SMALL)
    definition, model = _write_files(tmp_path, cfg, random_weights(cfg))
    extractor = _extractor(definition, model, data_hashes=dict(
        weights=hashlib.sha256(model.read_bytes()).hexdigest()))
    data = extractor.serialize()
    assert data['class_path'] == 'spacer.extractors.vgg16.VGG16CaffeExtractor'
    assert set(data['data_locations']) == {'definition', 'weights'}
    again = FeatureExtractor.deserialize(data)
    assert isinstance(again, VGG16CaffeExtractor) and again == extractor
    assert again.feature_dim == 4096


def test_needs_both_files(tmp_path):
    with pytest.raises(ValueError, match='weights must be present'):
        VGG16CaffeExtractor(data_locations=dict(
            definition=DataLocation('filesystem', str(tmp_path / 'a'))))


def test_weights_with_a_wrong_hash(tmp_path):
    cfg = VGGConfig(**SMALL)
    definition, model = _write_files(tmp_path, cfg, random_weights(cfg))
    extractor = _extractor(definition, model,
                           data_hashes=dict(weights='0' * 64))
    with pytest.raises(HashMismatchError):
        extractor(_photo(), [(10, 10)])


def test_bad_files_give_clear_errors(tmp_path):
    cfg = VGGConfig(**SMALL)
    weights = random_weights(cfg)
    definition, model = _write_files(tmp_path, cfg, weights)
    im = _photo()

    definition.write_text('layers { name: "conv1_1" ')
    with pytest.raises(CaffeFormatError, match='prototxt.*does not parse'):
        _extractor(definition, model)(im, [(10, 10)])

    definition.write_text(cfg.prototxt())
    del weights['fc7']
    model.write_bytes(caffemodel_bytes(cfg, weights))
    with pytest.raises(CaffeFormatError, match="no blobs for layer 'fc7'"):
        _extractor(definition, model)(im, [(10, 10)])

    model.write_bytes(b'not a caffemodel')
    with pytest.raises(CaffeFormatError, match='caffemodel'):
        _extractor(definition, model)(im, [(10, 10)])


def test_definition_for_another_input_size(tmp_path):
    cfg = VGGConfig(input_hw=227, **SMALL)
    extractor = _extractor(*_write_files(tmp_path, cfg, random_weights(cfg)))
    with pytest.raises(ValueError, match=r'\(3, 227, 227\).*\(3, 224, 224\)'):
        extractor(_photo(), [(10, 10)])


def test_import_does_not_import_torch():
    code = ('import sys, spacer.extractors.vgg16, spacer.extractors.caffe_proto;'
            ' print("torch" in sys.modules)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == 'False'


@pytest.mark.skipif(
    not __import__('torch').cuda.is_available(), reason='needs a CUDA GPU')
def test_features_on_gpu_match_numpy(tmp_path, monkeypatch):
    import torch
    monkeypatch.setattr(config, 'DEVICE', 'cuda')
    cfg = VGGConfig(**SMALL)
    weights = random_weights(cfg, seed=9)
    extractor = _extractor(*_write_files(tmp_path, cfg, weights))
    im = _photo()
    features, _ = extractor(im, ROWCOLS)
    model, device, _ = extractor.warm_model()
    assert device.startswith('cuda')
    assert next(model.parameters()).device.type == 'cuda'
    want = np_vgg_forward(cfg, weights, _pyspacer_crops(im, ROWCOLS))
    assert np.abs(features.feat - want).max() <= 1e-4
    assert torch.backends.cudnn.allow_tf32 is True  # restored afterwards
