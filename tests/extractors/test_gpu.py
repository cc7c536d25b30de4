"""The CUDA path: model and inputs really on the GPU, features equal to
the CPU's within 1e-4. Skipped where no GPU is present."""
from __future__ import annotations

import numpy as np
import pytest

from spacer import config
from spacer.data_classes import DataLocation
from spacer.extractors import EfficientNetExtractor
from spacer.extractors.engines import TorchEngine
from tests.extractors.conftest import b0_extractor

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='no CUDA device')


def test_cuda_features_equal_cpu(b0_weights_file, monkeypatch):
    from sklearn.datasets import load_sample_images
    from PIL import Image

    extractor = b0_extractor(b0_weights_file)
    im = Image.fromarray(load_sample_images().images[0])
    rng = np.random.default_rng(0)
    points = [(0, 0), (426, 639)] + [
        (int(r), int(c)) for r, c in zip(rng.integers(0, 427, 300),
                                         rng.integers(0, 640, 300))]

    monkeypatch.setattr(config, 'DEVICE', 'cuda')
    model, device, _ = extractor.warm_model()
    assert device == 'cuda' and isinstance(model, TorchEngine)
    assert all(p.is_cuda for p in model.model.parameters())
    assert extractor.batch_size(device) == EfficientNetExtractor.GPU_BATCH_SIZE
    on_gpu, _ = extractor(im, points)

    monkeypatch.setattr(config, 'DEVICE', 'cpu')
    monkeypatch.setattr('spacer.extractors.efficientnet.engine_setting',
                        lambda: 'torch')
    on_cpu, _ = extractor(im, points)
    assert np.abs(on_gpu.feat - on_cpu.feat).max() <= 1e-4


def test_auto_device_picks_cuda(monkeypatch):
    from spacer.extractors import warm
    monkeypatch.setattr(config, 'DEVICE', 'auto')
    assert warm.resolve_device() == 'cuda'


def _jpeg(tmp_path, name='photo.jpg'):
    from sklearn.datasets import load_sample_images
    from PIL import Image
    path = tmp_path / name
    Image.fromarray(load_sample_images().images[1]).save(path, quality=90)
    return path


def test_images_batched_together_on_cuda_equal_cpu(b0_weights_file, monkeypatch):
    from PIL import Image
    from sklearn.datasets import load_sample_images
    from spacer.extractors import warm
    from spacer.extractors.device_pipeline import extract_many

    extractor = b0_extractor(b0_weights_file)
    rng = np.random.default_rng(3)
    items = [(Image.fromarray(photo), list(zip(rng.integers(0, 427, n).tolist(),
                                               rng.integers(0, 640, n).tolist())))
             for photo, n in zip(load_sample_images().images * 3, [5, 300, 1, 40, 260, 7])]
    monkeypatch.setattr(config, 'DEVICE', 'cuda')
    on_gpu = dict(extract_many(extractor, items))
    monkeypatch.setattr(config, 'DEVICE', 'cpu')
    monkeypatch.setattr('spacer.extractors.efficientnet.engine_setting', lambda: 'torch')
    warm.clear()
    for i, (im, points) in enumerate(items):
        on_cpu, _ = extractor(im, points)
        assert np.abs(on_gpu[i].feat - on_cpu.feat).max() <= 1e-4


def test_nvjpeg_decodes_on_the_gpu_close_to_pillow(tmp_path, monkeypatch):
    from PIL import Image
    from spacer.extractors.device_images import load_for_extraction
    monkeypatch.setattr(config, 'JPEG_DECODER', 'nvjpeg')
    path = _jpeg(tmp_path)
    image, header = load_for_extraction(DataLocation('filesystem', str(path)), 'cuda')
    assert isinstance(image, torch.Tensor) and image.is_cuda
    assert tuple(image.shape) == (427, 640, 3) and header.size == (640, 427)
    want = np.asarray(Image.open(path).convert('RGB')).astype(np.int16)
    diff = np.abs(image.cpu().numpy().astype(np.int16) - want)
    assert diff.mean() < 1.0


def test_nvjpeg_setting_leaves_corrupt_files_to_pillow(tmp_path, monkeypatch):
    from spacer.exceptions import ImageDecodeError
    from spacer.extractors.device_images import load_for_extraction
    monkeypatch.setattr(config, 'JPEG_DECODER', 'nvjpeg')
    path = _jpeg(tmp_path)
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    with pytest.raises(ImageDecodeError, match='truncated'):
        load_for_extraction(DataLocation('filesystem', str(path)), 'cuda')
