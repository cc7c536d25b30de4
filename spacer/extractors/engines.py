"""
Ways to run a torch network over uint8 patch batches.

- TorchEngine: the model on its device (CPU or CUDA), channels-last memory
  layout, inference mode; inputs are moved to the device as uint8 and
  scaled there. cuDNN's TF32 is switched off during the forward pass so
  features stay within 1e-4 of float32 CPU results.
- OnnxEngine: on CPU, the same network exported once to ONNX and run by
  ONNX Runtime, several times faster than eager PyTorch on few cores. The
  export is cached on disk by the weights' sha256, so later processes skip
  it. Needs the optional packages onnx and onnxruntime; nothing is
  downloaded.

Both scale pixels like torchvision's ToTensor (float32 x / 255), as
pyspacer does.
"""
from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from spacer import config
from spacer.extras import extra_imports

with extra_imports():
    import torch

logger = logging.getLogger(__name__)


def to_unit_nchw(patches: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [0, 1]."""
    scaled = patches.astype(np.float32) / np.float32(255)
    return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))


class TorchEngine:
    """A torch module that maps (N, 3, H, W) in [0, 1] to (N, D)."""

    def __init__(self, model: torch.nn.Module, device: str):
        self.device = torch.device(device)
        self.model = model.eval().to(self.device,
                                     memory_format=torch.channels_last)

    def run(self, patches: np.ndarray) -> np.ndarray:
        # Moved as uint8 (a quarter of float32's bytes), scaled there.
        x = torch.from_numpy(np.ascontiguousarray(patches)).to(self.device)
        return self.run_tensor(x).float().cpu().numpy()

    def run_tensor(self, patches: torch.Tensor) -> torch.Tensor:
        """Features of an (N, H, W, 3) uint8 tensor already on this
        engine's device, left there (float32)."""
        with torch.inference_mode(), \
                torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
            # NHWC uint8 viewed as NCHW is exactly channels-last.
            x = patches.permute(0, 3, 1, 2).float().div_(255)
            x = x.contiguous(memory_format=torch.channels_last)
            return self.model(x).float()


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def onnx_cache_dir() -> Path:
    """EXTRACTORS_CACHE_DIR/onnx when set, else the user's cache dir."""
    base = config.get('EXTRACTORS_CACHE_DIR')
    if base:
        return Path(base) / 'onnx'
    xdg = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(xdg) / 'spacer' / 'onnx'


def export_onnx(model: torch.nn.Module, path: Path, crop_size: int) -> None:
    """Write the model as ONNX (batch dimension dynamic), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix='.tmp')
    os.close(fd)
    try:
        example = torch.zeros(1, 3, crop_size, crop_size)
        # The tracer warns about shape arithmetic that is constant for a
        # fixed patch size; nothing to act on.
        with torch.inference_mode(False), torch.no_grad(), \
                warnings.catch_warnings():
            warnings.simplefilter('ignore')
            torch.onnx.export(
                model.eval(), (example,), tmp, dynamo=False,
                input_names=['patches'], output_names=['features'],
                dynamic_axes={'patches': {0: 'n'}, 'features': {0: 'n'}},
                opset_version=17)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class OnnxEngine:
    """ONNX Runtime on CPU; same input and output as TorchEngine."""

    def __init__(self, onnx_path: Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        # torch.get_num_threads() honours OMP_NUM_THREADS and
        # torch.set_num_threads, so workers sharing a host can split cores.
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = \
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=['CPUExecutionProvider'])
        self.input_name = self.session.get_inputs()[0].name

    def run(self, patches: np.ndarray) -> np.ndarray:
        return self.session.run(
            None, {self.input_name: to_unit_nchw(patches)})[0]


def cpu_onnx_engine(model_factory, name: str, digest: str,
                    crop_size: int) -> OnnxEngine | None:
    """An OnnxEngine for the model with these weights, exporting it on
    first use; None when ONNX Runtime is unusable here (then run torch)."""
    if not onnx_available():
        return None
    import onnxruntime as ort
    path = onnx_cache_dir() / (
        f'{name}-{digest[:32]}-torch{torch.__version__}'
        f'-ort{ort.__version__}.onnx')
    try:
        if not path.exists():
            export_onnx(model_factory(), path, crop_size)
        return OnnxEngine(path)
    except Exception:  # a broken exporter or runtime must not stop work
        logger.warning('ONNX Runtime engine unavailable; using PyTorch.',
                       exc_info=True)
        return None
