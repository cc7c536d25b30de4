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
from collections.abc import Hashable
from io import BytesIO
from typing import Any

import numpy as np

from spacer import config
from spacer.exceptions import ConfigError
from spacer.extractors import coralnet_b0
from spacer.extractors.torch_extractors import TorchExtractor, read_checkpoint

ENGINES = ('auto', 'torch', 'onnxruntime')


def engine_setting() -> str:
    """Config EXTRACT_ENGINE: 'auto' (ONNX Runtime on CPU when installed),
    'torch', or 'onnxruntime' (CPU only; falls back to torch if missing)."""
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


class EfficientNetExtractor(TorchExtractor):
    """CoralNet's EfficientNet-B0; weights: a torch file holding
    {'net': state_dict}."""

    MODEL_NAME = coralnet_b0.MODEL_NAME
    NUM_CLASSES = coralnet_b0.NUM_CLASSES
    GPU_BATCH_SIZE = 256

    @property
    def feature_dim(self) -> int:
        return 1280

    @classmethod
    def untrained_model(cls) -> Any:
        """pyspacer's B0 (forward gives logits, extract_features the
        features), freshly initialized."""
        # Imported here, as below: the network imports torch.
        from spacer.extractors.efficientnet_net import EfficientNet
        return EfficientNet.from_pretrained(
            model_name=cls.MODEL_NAME, num_classes=cls.NUM_CLASSES)

    def model_variant(self, device: str) -> Hashable:
        return engine_setting() if device == 'cpu' else 'torch'

    def build_model(self, device: str) -> Any:
        # Imported here: the engines and the network import torch.
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


# pyspacer defines the network in this module; ours is in efficientnet_net
# (imported on first use, as it imports torch).
_NETWORK_NAMES = ('EfficientNet', 'MBConvBlock')


def __getattr__(name: str) -> Any:
    if name in _NETWORK_NAMES:
        from spacer.extractors import efficientnet_net  # imports torch
        return getattr(efficientnet_net, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_NETWORK_NAMES))
