"""
Cutting patches where the image already is: on the GPU, one gather.

The same geometry as ``spacer.extractors.utils.PatchCropper`` (pyspacer's
reflect padding, the point at index ``(crop_size + 1) // 2`` from the
patch's top left), pixel for pixel, but as index arithmetic on torch
tensors: the image is uploaded (or decoded there) once and only the
patches' pixels are read, never copied back to the host.

Imported only on the way to a torch device path (it imports torch).
"""
from __future__ import annotations

import warnings

import numpy as np

from spacer.extras import extra_imports

with extra_imports():
    import torch


def reflect_index_grid(starts: torch.Tensor, length: int,
                       size: int) -> torch.Tensor:
    """(N, length) indices ``start .. start+length-1`` for each start,
    folded into ``[0, size)`` as numpy's ``mode='reflect'`` pads (mirror
    about the edge pixels, repeatedly if needed)."""
    steps = torch.arange(length, device=starts.device, dtype=torch.int64)
    index = starts.to(torch.int64)[:, None] + steps[None, :]
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = torch.remainder(index, period)  # floor modulo, as numpy's
    return torch.where(index >= size, period - index, index)


def crop_on_device(image: torch.Tensor, rowcols: np.ndarray | torch.Tensor,
                   crop_size: int) -> torch.Tensor:
    """(N, crop_size, crop_size, 3) uint8 patches of an (H, W, 3) uint8
    image tensor, one per (row, col), on the image's device."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"Expected an RGB image tensor of shape (H, W, 3), got"
            f" {tuple(image.shape)}.")
    points = torch.as_tensor(np.asarray(rowcols, dtype=np.int64)
                             if not isinstance(rowcols, torch.Tensor)
                             else rowcols).reshape(-1, 2).to(image.device)
    height, width = int(image.shape[0]), int(image.shape[1])
    offset = (crop_size + 1) // 2
    rows = reflect_index_grid(points[:, 0] - offset, crop_size, height)
    cols = reflect_index_grid(points[:, 1] - offset, crop_size, width)
    return image[rows[:, :, None], cols[:, None, :]]


def image_to_device(rgb: np.ndarray, device: torch.device | str) \
        -> torch.Tensor:
    """An (H, W, 3) uint8 array on ``device``, copied through pinned
    memory when that is a GPU (the copy then runs at full bus speed)."""
    with warnings.catch_warnings():
        # Pillow's arrays are read-only; the tensor is only ever read.
        warnings.filterwarnings('ignore', message='.*not writable')
        tensor = torch.from_numpy(np.ascontiguousarray(rgb))
    if torch.device(device).type == 'cuda':
        tensor = tensor.pin_memory()
        return tensor.to(device, non_blocking=True)
    return tensor.to(device)
