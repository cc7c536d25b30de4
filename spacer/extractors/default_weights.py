"""
Weights-free EfficientNet-B0 weights for demos and tests.

CoralNet's trained weights are not public. A freshly initialized network
gives useless features (magnitudes ~1e-13, every point alike) because its
BatchNorm running statistics do not match its activations. Recomputing
those statistics on generated texture patches makes the features carry
information: distinct textures become linearly separable. Deterministic
for a seed.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from io import BytesIO
from pathlib import Path

import numpy as np

from spacer.data_classes import DataLocation
from spacer.extractors.efficientnet import EfficientNetExtractor

CROP = 224


def texture_patches(n: int, seed: int = 0, size: int = CROP) -> np.ndarray:
    """(n, size, size, 3) uint8 patches of varied synthetic textures:
    gratings, smooth blobs, checkerboards, speckle, gradients and
    full-contrast binary noise, each in random colours. The binary noise
    keeps activations bounded on harsh inputs (1-bit or saturated images)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        kind = i % 6
        if kind == 0:      # grating
            angle, freq = rng.uniform(0, np.pi), rng.uniform(2, 40)
            base = np.sin(2 * np.pi * freq * (
                np.cos(angle) * xx + np.sin(angle) * yy))
        elif kind == 1:    # smooth blobs
            coarse = rng.normal(size=(rng.integers(3, 12),) * 2)
            reps = -(-size // coarse.shape[0])
            base = np.kron(coarse, np.ones((reps, reps)))[:size, :size]
        elif kind == 2:    # checkerboard
            cells = rng.integers(2, 30)
            base = ((np.floor(xx * cells) + np.floor(yy * cells)) % 2) * 2 - 1
        elif kind == 3:    # speckle
            base = rng.normal(size=(size, size))
        elif kind == 4:    # gradient
            angle = rng.uniform(0, 2 * np.pi)
            base = np.cos(angle) * xx + np.sin(angle) * yy
            base = base - base.mean()
        else:              # binary noise, per channel, in 1-4 px cells
            cell = int(rng.integers(1, 5))
            cells = -(-size // cell)
            bits = rng.random((cells, cells, 3)) < rng.uniform(0.2, 0.8)
            out[i] = np.kron(bits, np.ones((cell, cell, 1)))[:size, :size] \
                * 255
            continue
        base = (base - base.min()) / (np.ptp(base) + 1e-6)
        low, high = rng.uniform(0, 255, size=(2, 3))
        image = low + base[..., None] * (high - low)
        image += rng.normal(scale=rng.uniform(0, 12), size=image.shape)
        out[i] = np.clip(image, 0, 255).astype(np.uint8)
    return out


def build_default_state_dict(seed: int = 0, n_patches: int = 160,
                             batch_size: int = 32) -> dict:
    """A random EfficientNet-B0 state_dict whose BatchNorm statistics are
    recomputed on generated textures (cumulative average over all
    batches, in train mode without gradients)."""
    import torch

    from spacer.extractors.efficientnet_net import EfficientNetB0  # imports torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = EfficientNetB0()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    patches = texture_patches(n_patches, seed)
    net.train()
    with torch.no_grad():
        for start in range(0, n_patches, batch_size):
            batch = torch.from_numpy(patches[start:start + batch_size])
            net(batch.permute(0, 3, 1, 2).float().div(255))
    net.eval()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 0.01
    return net.state_dict()


def write_default_weights(path: str | os.PathLike, seed: int = 0,
                          n_patches: int = 160) -> str:
    """Save ``{'net': state_dict}`` to ``path`` (atomically) and return
    its sha256."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Saved through memory: torch names the archive after the file, and
    # the bytes (hence the hash) must depend on the seed alone.
    stream = BytesIO()
    torch.save({'net': build_default_state_dict(seed, n_patches)}, stream)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix='.tmp')
    os.close(fd)
    try:
        Path(tmp).write_bytes(stream.getvalue())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def default_extractor(directory: str | os.PathLike, seed: int = 0):
    """An EfficientNetExtractor on default weights kept in ``directory``
    (made on first call, ~10 s on two CPU cores), with its hash."""
    path = Path(directory) / f'efficientnet_b0_default_seed{seed}.pt'
    if path.exists():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        digest = write_default_weights(path, seed)
    return EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(path))},
        data_hashes={'weights': digest})
