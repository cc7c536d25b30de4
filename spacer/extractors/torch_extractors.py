"""
What every extractor whose network is a PyTorch module shares, under
pyspacer 0.14's names: its one data file (a torch checkpoint
``{'net': state_dict}``), reading that file safely, and pyspacer's
per-patch input transformation (torchvision's ToTensor, done here without
torchvision).

A subclass written against pyspacer (``untrained_model`` and
``feature_dim``, a network with ``extract_features``) runs as it is;
EfficientNetExtractor overrides ``build_model``/``compute_features`` with
its faster engines. Importing this module does not import torch.
"""
from __future__ import annotations

import abc
import codecs
import pickle
from collections import OrderedDict
from collections.abc import Mapping
from io import BytesIO
from typing import Any, ClassVar

import numpy as np

from spacer.content_free import describe, without_content
from spacer.data_classes import DataLocation
from spacer.extractors.base import FeatureExtractor
from spacer.extractors.data_files import WeightsFormatError
from spacer.storage.factory import storage_factory


class PixelsToTensor:
    """An HWC image (Pillow or numpy) as a CHW torch tensor, as
    torchvision's ToTensor gives it: uint8 scaled to float32 in [0, 1]
    (x / 255), other dtypes kept; a 2-d image gets one channel."""

    # Pillow modes whose pixels are not uint8.
    _PIL_DTYPES: ClassVar[dict[str, type]] = {'I': np.int32, 'I;16': np.int16, 'F': np.float32}

    def __call__(self, picture: Any) -> Any:
        import torch

        from spacer.extractors.engines import to_unit_nchw  # imports torch

        array = self._hwc(picture)
        if array.dtype == np.uint8:
            return torch.from_numpy(to_unit_nchw(array[None])[0])
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))

    def _hwc(self, picture: Any) -> np.ndarray:
        from PIL import Image

        if isinstance(picture, Image.Image):
            array = np.array(picture, self._PIL_DTYPES.get(picture.mode,
                                                           np.uint8))
            if picture.mode == '1':
                array = array * np.uint8(255)
        elif isinstance(picture, np.ndarray):
            array = picture
        else:
            raise TypeError(f'pic should be PIL Image or ndarray.'
                            f' Got {type(picture)}')
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3:
            raise ValueError(f'pic should be 2/3 dimensional.'
                             f' Got {array.ndim} dimensions.')
        return array

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'


def transformation() -> PixelsToTensor:
    """pyspacer's patch transformation: image -> CHW float tensor in
    [0, 1]. (No mean/std normalization: CoralNet's networks were trained
    on plain ToTensor input.)"""
    return PixelsToTensor()


class _ModuleProxy:
    """Stands for ``obj`` under another ``__module__``: lets torch's
    weights-only unpickler accept a name pickled under numpy 1's module
    paths (numpy.core.*) while numpy 2 defines it in numpy._core."""

    def __init__(self, obj: Any, module: str):
        self.obj = obj
        self.__module__ = module
        self.__name__ = obj.__name__
        self.__qualname__ = obj.__qualname__

    def __call__(self, *args, **kwargs):
        return self.obj(*args, **kwargs)


def read_checkpoint(stream: BytesIO, what: str = 'EfficientNet') -> object:
    """torch.load with only plain tensors and the few numpy types that
    CoralNet's weights files hold (no arbitrary code from the pickle)."""
    import torch


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
        raise WeightsFormatError(  # torch's text quotes the pickle
            f"Could not read the {what} weights file as a torch"
            f" checkpoint: {describe(e)}.") from without_content(e)


def strip_module_prefix(state_dict: Mapping[str, Any]) -> OrderedDict:
    """Keys saved through DataParallel start with 'module.'; drop it."""
    return OrderedDict(
        (k.removeprefix('module.'), v)
        for k, v in state_dict.items())


def _shape_of(value: object) -> tuple | str:
    import torch
    return tuple(value.shape) if isinstance(value, torch.Tensor) \
        else type(value).__name__


def load_checkpoint_into(model: Any, checkpoint: object, family: str,
                         architecture: str, layout: str = '') -> Any:
    """
    ``model`` with the state_dict of a loaded checkpoint
    ``{'net': state_dict}`` ('module.' prefixes dropped). Anything else
    (not a dict, no 'net', missing, unexpected or wrongly shaped tensors)
    raises WeightsFormatError naming what is wrong; ``family``,
    ``architecture`` and ``layout`` word those messages.
    """

    if not isinstance(checkpoint, Mapping) or 'net' not in checkpoint:
        # The file's own keys are content: only their number is shown.
        found = f'a dict of {len(checkpoint)} other keys' \
            if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise WeightsFormatError(
            f"{family} weights must be a dict {{'net': state_dict}};"
            f" found {found}.")
    state_dict = checkpoint['net']
    if not isinstance(state_dict, Mapping):
        raise WeightsFormatError(
            f"{family} weights' 'net' must be a state_dict, not"
            f" {type(state_dict).__name__}.")
    state_dict = strip_module_prefix(state_dict)
    expected = model.state_dict()
    # BatchNorm fills in num_batches_tracked for checkpoints made before
    # torch 0.4.1, as pyspacer's strict load does.
    missing = [k for k in expected if k not in state_dict
               and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        raise WeightsFormatError(
            f"Weights file does not hold an {architecture} state_dict"
            f"{layout}: {len(missing)} missing keys"
            f" {missing[:3]}, {len(unexpected)} unexpected keys.")
    wrong = [(k, _shape_of(v), tuple(expected[k].shape))
             for k, v in state_dict.items()
             if _shape_of(v) != tuple(expected[k].shape)]
    if wrong:
        raise WeightsFormatError(
            f"Weights file has tensors of the wrong shape for {architecture}"
            f" (key, found, expected): {wrong[:3]}.")
    model.load_state_dict(state_dict)
    return model


class TorchExtractor(FeatureExtractor, abc.ABC):
    """An extractor whose network is a torch module built by
    ``untrained_model()`` and loaded from the 'weights' file; features
    are ``extract_features`` of the transformed patches."""

    # weights: a torch checkpoint file (typically .pt).
    DATA_LOCATION_KEYS: ClassVar[list[str]] = ['weights']
    # pyspacer's name for the patches run through the network at once.
    BATCH_SIZE = CPU_BATCH_SIZE = 10

    @staticmethod
    def untrained_model() -> Any:
        """The network with its intended shape, weights not yet trained."""
        raise NotImplementedError

    @classmethod
    def load_weights(cls, weights_datastream: BytesIO) -> Any:
        """
        ``untrained_model()`` with the weights in this checkpoint stream
        (DataParallel 'module.' prefixes dropped), on the CPU, gradients
        off. Only tensors and the numpy types CoralNet's files hold are
        unpickled; a file that is not such a checkpoint, or whose tensors
        do not fit the model, raises WeightsFormatError.
        """
        model = cls.untrained_model()
        load_checkpoint_into(
            model, read_checkpoint(weights_datastream, cls.__name__),
            family=cls.__name__, architecture=type(model).__name__)
        model.requires_grad_(False)
        return model

    @classmethod
    def untrained_instance(cls, data_loc_key: str = 'weights') \
            -> TorchExtractor:
        """An extractor over ``untrained_model()``'s weights, kept in
        memory storage under ``data_loc_key``: a valid extractor for tests
        that need its formats, not meaningful features."""
        import torch


        stream = BytesIO()
        torch.save({'net': cls.untrained_model().state_dict()}, stream)
        storage_factory('memory').store(data_loc_key, stream)
        return cls(data_locations={
            'weights': DataLocation('memory', data_loc_key)})

    def build_model(self, device: str) -> Any:
        stream, _ = self.load_datastream('weights')
        return self.load_weights(stream).eval().to(device)

    def compute_features(self, model: Any, patches: np.ndarray) -> np.ndarray:
        import torch

        device = next(model.parameters()).device
        transform = transformation()
        batch = torch.stack([transform(patch) for patch in patches])
        with torch.inference_mode():
            features = model.extract_features(batch.to(device))
        return features.float().cpu().numpy()

    def patches_to_features(self, patch_list) -> tuple[list, bool]:
        """pyspacer's hook: features (lists of floats) of already cropped
        uint8 patches, and whether the weights were downloaded. The warm
        model computes them (FeatureExtractor's batching)."""
        return super().patches_to_features(patch_list)
