"""The CPU engines: ONNX Runtime exported once per weights content and
cached on disk; PyTorch when ONNX Runtime is unusable or not wanted."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from spacer import config
from spacer.extractors import warm
from spacer.extractors.engines import (
    OnnxEngine, TorchEngine, onnx_available, to_unit_nchw)
from spacer.extractors.default_weights import texture_patches
from tests.extractors.conftest import b0_extractor

pytestmark = pytest.mark.skipif(not onnx_available(),
                                reason='onnx / onnxruntime not installed')


@pytest.fixture
def extractor(b0_weights_file, tmp_cache_dir, monkeypatch):
    monkeypatch.setattr(config, 'DEVICE', 'cpu')
    monkeypatch.setattr('spacer.extractors.efficientnet.engine_setting',
                        lambda: 'auto')
    return b0_extractor(b0_weights_file)


def test_export_is_cached_by_weights_hash(extractor, tmp_cache_dir,
                                          b0_weights_file):
    _, digest = b0_weights_file
    model, _, _ = extractor.warm_model()
    assert isinstance(model, OnnxEngine)
    exports = list((tmp_cache_dir / 'onnx').glob('*.onnx'))
    assert len(exports) == 1 and digest[:32] in exports[0].name
    stamp = exports[0].stat().st_mtime_ns
    warm.clear()
    again, _, _ = extractor.warm_model()
    assert again is not model and isinstance(again, OnnxEngine)
    assert exports[0].stat().st_mtime_ns == stamp   # reused, not redone


def test_broken_export_falls_back_to_torch(extractor, tmp_cache_dir,
                                           caplog):
    extractor.warm_model()
    export = next((tmp_cache_dir / 'onnx').glob('*.onnx'))
    export.write_bytes(b'truncated')
    warm.clear()
    with caplog.at_level(logging.WARNING):
        model, _, _ = extractor.warm_model()
    assert isinstance(model, TorchEngine)
    assert 'ONNX Runtime engine unavailable' in caplog.text


def test_torch_setting_skips_onnx(extractor, tmp_cache_dir, monkeypatch):
    monkeypatch.setattr('spacer.extractors.efficientnet.engine_setting',
                        lambda: 'torch')
    model, _, _ = extractor.warm_model()
    assert isinstance(model, TorchEngine)
    assert not (tmp_cache_dir / 'onnx').exists()


def test_engines_agree_on_texture_patches(extractor, monkeypatch):
    patches = texture_patches(6, seed=11)
    onnx_model, _, _ = extractor.warm_model()
    monkeypatch.setattr('spacer.extractors.efficientnet.engine_setting',
                        lambda: 'torch')
    torch_model, _, _ = extractor.warm_model()
    assert np.abs(onnx_model.run(patches) - torch_model.run(patches)
                  ).max() <= 1e-4


def test_scaling_is_totensor():
    patches = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    scaled = to_unit_nchw(patches)
    assert scaled.shape == (2, 3, 4, 4) and scaled.dtype == np.float32
    np.testing.assert_array_equal(
        scaled, patches.transpose(0, 3, 1, 2).astype(np.float32) / 255)


def test_engine_setting_rejects_unknown(monkeypatch):
    from spacer.extractors.efficientnet import engine_setting
    monkeypatch.setattr(config, 'EXTRACT_ENGINE', 'tensorrt', raising=False)
    monkeypatch.setitem(config.SETTINGS_BY_NAME, 'EXTRACT_ENGINE', None)
    with pytest.raises(ValueError, match='EXTRACT_ENGINE'):
        engine_setting()
