"""
CoralNet's current extractor: EfficientNet-B0, 1280-d features.

The network is built from its weights file once per process (see
``warm``); on CPU it runs through ONNX Runtime when that is installed
(several times faster than eager PyTorch here), otherwise PyTorch with a
channels-last layout; on CUDA, PyTorch on the GPU. Torch is imported only
when features are computed.
"""
from __future__ import annotations

import hashlib
from io import BytesIO
from typing import Any, Hashable

import numpy as np

from spacer.extractors.base import FeatureExtractor

ENGINES = ('auto', 'torch', 'onnxruntime')


def engine_setting() -> str:
    """Config EXTRACT_ENGINE: 'auto' (ONNX Runtime on CPU when installed),
    'torch', or 'onnxruntime' (CPU only; falls back to torch if missing)."""
    from spacer import config
    from spacer.exceptions import ConfigError
    try:
        value = config.get('EXTRACT_ENGINE')
    except ConfigError:  # a config without this setting
        value = None
    value = (value or 'auto').strip().lower()
    if value not in ENGINES:
        raise ValueError(
            f"EXTRACT_ENGINE must be one of {', '.join(ENGINES)},"
            f" not '{value}'.")
    return value


def read_checkpoint(stream: BytesIO) -> object:
    """torch.load with only plain tensors and the few numpy types that
    CoralNet's weights files hold (no arbitrary code from the pickle)."""
    import codecs
    import pickle

    import torch

    from spacer.extractors.data_files import WeightsFormatError

    core = getattr(np, '_core', None) or np.core
    allowed = [np.dtype, codecs.encode, np.dtypes.Int64DType,
               np.dtypes.Float64DType, np.dtypes.Float32DType,
               core.multiarray.scalar,
               (core.multiarray.scalar, 'numpy.core.multiarray.scalar')]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(stream, map_location='cpu', weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError,
            AttributeError, TypeError) as e:
        raise WeightsFormatError(
            f"Could not read the EfficientNet weights file as a torch"
            f" checkpoint: {e}") from e


class EfficientNetExtractor(FeatureExtractor):

    # A torch file holding {'net': state_dict}.
    DATA_LOCATION_KEYS = ['weights']
    CPU_BATCH_SIZE = 10
    GPU_BATCH_SIZE = 256

    @property
    def feature_dim(self) -> int:
        return 1280

    def model_variant(self, device: str) -> Hashable:
        return engine_setting() if device == 'cpu' else 'torch'

    def build_model(self, device: str) -> Any:
        from spacer.extractors import engines
        from spacer.extractors.efficientnet_net import load_b0

        stream, _ = self.load_datastream('weights')
        data = stream.getvalue()
        net = load_b0(read_checkpoint(BytesIO(data)))
        if device == 'cpu' and engine_setting() != 'torch':
            engine = engines.cpu_onnx_engine(
                lambda: net, 'efficientnet_b0',
                hashlib.sha256(data).hexdigest(), self.CROP_SIZE)
            if engine is not None:
                return engine
        return engines.TorchEngine(net, device)

    def compute_features(self, model: Any, patches: np.ndarray) -> np.ndarray:
        return model.run(patches)

    def compute_features_on_device(self, model: Any, patches: Any) -> Any:
        if hasattr(model, 'run_tensor'):  # a TorchEngine (not ONNX Runtime)
            return model.run_tensor(patches)
        return super().compute_features_on_device(model, patches)
