"""
CoralNet's legacy VGG16 extractor, run in PyTorch from Caffe's own files.

pyspacer 0.14 needs Caffe for this extractor, and Caffe no longer installs.
Here the same two files (``definition``: deploy.prototxt, ``weights``:
.caffemodel) are read with protobuf alone (``caffe_proto``) into a PyTorch
network (``vgg16_net``) that gives what pyspacer read from Caffe: the
``fc7`` blob after a full forward pass (so after the in-place ``relu7``),
4096 values per patch, from BGR 0-255 input minus 128.

Importing this module does not import torch.
"""
from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from spacer.extractors.base import FeatureExtractor


class Transformer:
    """One image to and from the VGG16 network's input, in numpy: RGB HWC
    to BGR CHW float32 minus ``mean``, times ``scale`` (and back). The
    network applies the same step to whole batches on its device
    (``VGG16Net.preprocess``); this is pyspacer's per-image form."""

    def __init__(self, mean: tuple = (0, 0, 0)) -> None:
        self.mean = np.array(mean, dtype=np.float32)
        self.scale = 1.0

    def preprocess(self, im: np.ndarray) -> np.ndarray:
        bgr = np.float32(im)[:, :, ::-1]
        return ((bgr - self.mean) * self.scale).transpose((2, 0, 1))

    def deprocess(self, im: np.ndarray) -> np.ndarray:
        bgr = im.transpose((1, 2, 0)) / self.scale + self.mean
        return np.uint8(bgr[:, :, ::-1])


class VGG16CaffeExtractor(FeatureExtractor):

    # definition: a Caffe prototxt file, typically deploy.prototxt.
    # weights: a Caffe model file, typically .caffemodel.
    DATA_LOCATION_KEYS = ['definition', 'weights']

    BATCH_SIZE = CPU_BATCH_SIZE = 10
    # VGG16 activations take ~30 MB per patch at their largest layers.
    GPU_BATCH_SIZE = 128
    # The network runs from this layer (the first convolution; any layer
    # before it in the definition is skipped, as Caffe's forward(start=)
    # does) to the blob whose values are the features.
    START_LAYER = 'conv1_1'
    SCORE_LAYER = 'fc7'

    @property
    def feature_dim(self) -> int:
        return 4096

    def build_model(self, device: str) -> Any:
        from spacer.extractors.vgg16_net import build_network  # imports torch

        definition, _ = self.load_datastream('definition')
        weights, _ = self.load_datastream('weights')
        net = build_network(definition.read(), weights.read(),
                            self.SCORE_LAYER, self.START_LAYER)
        expected = (3, self.CROP_SIZE, self.CROP_SIZE)
        if tuple(net.input_shape) != expected:
            raise ValueError(
                f"The VGG16 definition's input is {tuple(net.input_shape)}"
                f" (C, H, W); this extractor feeds {expected} patches.")
        return net.to(device)

    def compute_features(self, model: Any, patches: np.ndarray) \
            -> np.ndarray:
        import torch

        device = next(model.parameters()).device
        batch = torch.from_numpy(np.ascontiguousarray(patches, np.uint8))
        return self.compute_features_on_device(
            model, batch.to(device)).cpu().numpy()

    def compute_features_on_device(self, model: Any, patches: Any) -> Any:
        import torch

        with torch.inference_mode(), _full_float32(patches.device):
            return model(patches)


@contextlib.contextmanager
def _full_float32(device):
    """Keep cuDNN from computing convolutions in TF32 (10-bit mantissa,
    on by default in PyTorch), which would move features ~1e-3 away from
    Caffe's float32 results."""
    import torch

    if device.type != 'cuda':
        yield
        return
    previous = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = previous
