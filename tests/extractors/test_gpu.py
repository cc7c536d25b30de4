"""The CUDA path: model and inputs really on the GPU, features equal to
the CPU's within 1e-4. Skipped where no GPU is present."""
from __future__ import annotations

import numpy as np
import pytest

from spacer import config
from spacer.data_classes import DataLocation
from spacer.extractors import EfficientNetExtractor
from spacer.extractors.engines import TorchEngine

torch = pytest.importorskip('torch')
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='no CUDA device')


def test_cuda_features_equal_cpu(b0_weights_file, monkeypatch):
    from sklearn.datasets import load_sample_images
    from PIL import Image

    path, digest = b0_weights_file
    extractor = EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(path))},
        data_hashes={'weights': digest})
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
