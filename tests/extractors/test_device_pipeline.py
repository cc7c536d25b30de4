"""
The GPU path's pieces, run on torch's CPU device: cropping by index
arithmetic equals PatchCropper pixel for pixel, one image's features and a
batch of images sharing forward passes equal the host path, and the
decoder setting falls back to Pillow wherever nvJPEG cannot be used.
The same code on CUDA is checked by tests/extractors/test_gpu.py.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from spacer import config
from spacer.data_classes import DataLocation
from spacer.exceptions import ConfigError
from spacer.extractors.device_crop import crop_on_device, image_to_device
from spacer.extractors.device_images import (
    load_for_extraction, nvjpeg_can_decode)
from spacer.extractors.device_pipeline import extract_many, features_on_device
from spacer.extractors.utils import PatchCropper
from spacer.storage import storage_for
from tests.extractors.conftest import b0_extractor


def _image(height, width, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize('height,width', [(1, 1), (1, 5), (2, 3), (100, 7),
                                          (300, 400), (50, 600)])
@pytest.mark.parametrize('crop_size', [224, 7, 8])
def test_crop_equals_patch_cropper_everywhere(height, width, crop_size):
    rgb = _image(height, width, seed=height * width)
    rng = np.random.default_rng(1)
    points = [(0, 0), (height - 1, width - 1), (0, width - 1),
              (height - 1, 0)] + list(zip(rng.integers(0, height, 40),
                                          rng.integers(0, width, 40)))
    want = PatchCropper(rgb, crop_size).crop(points)
    got = crop_on_device(image_to_device(rgb, 'cpu'), points, crop_size)
    assert got.dtype == torch.uint8
    assert np.array_equal(got.numpy(), want)


def test_crop_refuses_a_non_rgb_tensor():
    with pytest.raises(ValueError, match='RGB image tensor'):
        crop_on_device(torch.zeros(4, 4, dtype=torch.uint8), [(0, 0)], 3)


@pytest.fixture
def torch_b0(b0_weights_file, monkeypatch):
    """The B0 extractor on torch's CPU device (the GPU path's engine)."""
    monkeypatch.setattr('spacer.extractors.efficientnet.engine_setting',
                        lambda: 'torch')
    return b0_extractor(b0_weights_file)


def _photo(seed, height=260, width=330):
    from sklearn.datasets import load_sample_images
    china = load_sample_images().images[seed % 2]
    top, left = seed * 7 % 100, seed * 11 % 200
    return Image.fromarray(china[top:top + height, left:left + width])


def _points(seed, n, height=260, width=330):
    rng = np.random.default_rng(seed)
    points = list(zip(rng.integers(0, height, n).tolist(),
                      rng.integers(0, width, n).tolist()))
    return points + [points[0], (0, 0)]  # a duplicate and a corner


def test_one_image_on_device_equals_host_path(torch_b0):
    im, points = _photo(0), _points(0, 25)
    want, _ = torch_b0(im, points)
    model, device, _ = torch_b0.warm_model()
    got = features_on_device(torch_b0, model, device, im, points)
    assert got.shape == (len(points), 1280)
    assert np.abs(got - want.feat).max() <= 1e-5
    assert np.array_equal(got[0], got[-2])  # the duplicate: same vector


def test_many_images_share_batches_and_keep_order(torch_b0, monkeypatch):
    # 7 patches a batch: every image's points are split across batches
    # that also hold other images' points.
    monkeypatch.setattr(config, 'EXTRACT_BATCH_SIZE', 7)
    items = [(_photo(seed), _points(seed, n))
             for seed, n in enumerate([3, 12, 1, 20, 6])]
    results = list(extract_many(torch_b0, items, decode_threads=2))
    assert [index for index, _ in results] == list(range(len(items)))
    for (im, points), (_, features) in zip(items, results):
        want, _ = torch_b0(im, points)
        assert [(p.row, p.col) for p in features.point_features] == \
            [(p.row, p.col) for p in want.point_features]
        assert np.abs(features.feat - want.feat).max() <= 1e-5


def test_many_images_from_a_custom_decoder(torch_b0):
    jpegs = []
    for seed in range(3):
        stream = io.BytesIO()
        _photo(seed).save(stream, 'JPEG', quality=90)
        jpegs.append(stream.getvalue())

    def decode(data, device):
        return image_to_device(np.asarray(Image.open(io.BytesIO(data))), device)

    def decode_batch(datas, device):
        return [decode(data, device) for data in datas]

    items = [(data, _points(i, 4)) for i, data in enumerate(jpegs)]
    one_by_one = dict(extract_many(torch_b0, items, decode=decode))
    in_pairs = dict(extract_many(torch_b0, items, decode_batch=decode_batch,
                                 images_per_decode=2))
    for i, data in enumerate(jpegs):
        want, _ = torch_b0(Image.open(io.BytesIO(data)), items[i][1])
        assert np.abs(one_by_one[i].feat - want.feat).max() <= 1e-5
        assert np.abs(in_pairs[i].feat - want.feat).max() <= 1e-5


def _stored(tmp_path, name, im, fmt, **kwargs):
    path = tmp_path / name
    im.save(path, fmt, **kwargs)
    return DataLocation('filesystem', str(path))


@pytest.mark.parametrize('mode,fmt,eligible', [
    ('RGB', 'JPEG', True), ('L', 'JPEG', False), ('CMYK', 'JPEG', False),
    ('RGB', 'PNG', False)])
def test_only_ycbcr_jpegs_go_to_nvjpeg(tmp_path, mode, fmt, eligible):
    loc = _stored(tmp_path, f'im.{fmt.lower()}',
                  _photo(0).convert(mode), fmt)
    header = Image.open(loc.key)
    assert nvjpeg_can_decode(header) is eligible


def test_nvjpeg_setting_without_a_gpu_decodes_with_pillow(tmp_path, monkeypatch):
    monkeypatch.setattr(config, 'JPEG_DECODER', 'nvjpeg')
    loc = _stored(tmp_path, 'im.jpg', _photo(1), 'JPEG')
    image, header = load_for_extraction(loc, 'cpu')
    assert isinstance(image, Image.Image) and image is header
    assert np.array_equal(np.asarray(image),
                          np.asarray(Image.open(loc.key).convert('RGB')))


def test_extract_task_with_nvjpeg_setting_on_cpu_is_unchanged(
        tmp_path, torch_b0, monkeypatch):
    from spacer.messages import ExtractFeaturesMsg
    from spacer.tasks import extract_features
    from spacer.data_classes import ImageFeatures

    monkeypatch.setattr(config, 'DEVICE', 'cpu')  # also where a GPU is
    loc = _stored(tmp_path, 'im.jpg', _photo(2), 'JPEG')
    points = _points(2, 5)
    outputs = {}
    for decoder in ('pillow', 'nvjpeg'):
        monkeypatch.setattr(config, 'JPEG_DECODER', decoder)
        feature_loc = DataLocation('filesystem', str(tmp_path / decoder))
        extract_features(ExtractFeaturesMsg(
            job_token='j', extractor=torch_b0, rowcols=points,
            image_loc=loc, feature_loc=feature_loc))
        outputs[decoder] = ImageFeatures.load(feature_loc).feat
    assert np.array_equal(outputs['pillow'], outputs['nvjpeg'])


def test_unknown_decoder_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setattr(config, 'JPEG_DECODER', 'libjpeg')
    loc = _stored(tmp_path, 'im.jpg', _photo(1), 'JPEG')
    with pytest.raises(ConfigError, match='JPEG_DECODER'):
        load_for_extraction(loc, 'cpu')
    assert storage_for(loc).exists(loc.key)


def test_only_complete_jpegs_would_go_to_nvjpeg(tmp_path):
    from spacer.extractors.device_images import _ends_like_a_jpeg
    loc = _stored(tmp_path, 'im.jpg', _photo(0), 'JPEG')
    data = open(loc.key, 'rb').read()
    assert _ends_like_a_jpeg(data) and _ends_like_a_jpeg(data + b'\0\0')
    assert not _ends_like_a_jpeg(data[:-100])
