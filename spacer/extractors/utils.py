"""
Cutting square patches around points, with pyspacer's exact geometry.

pyspacer converts the image to RGB, reflect-pads the whole image by the
crop size on every side (numpy ``mode='reflect'``) and slices a patch so
that the point lands at index (crop_size // 2, crop_size // 2). Padding a
12-megapixel image copies ~40 MB per image; here each patch is cut
directly, and only patches that cross the border look up mirrored
indices. The output is identical, pixel for pixel.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from PIL import Image


def to_rgb_array(im: Image.Image) -> np.ndarray:
    """The image as an (H, W, 3) uint8 array, converted like pyspacer
    (Pillow's own ``convert('RGB')``, whatever the mode)."""
    if im.mode != 'RGB':
        im = im.convert('RGB')
    return np.asarray(im)


def reflect_indices(start: int, length: int, size: int) -> np.ndarray:
    """Indices ``start .. start+length-1`` folded into ``[0, size)`` the way
    numpy's ``mode='reflect'`` pads: mirror about the edge pixels without
    repeating them, repeatedly if the padding exceeds the image."""
    idx = np.arange(start, start + length)
    if size == 1:
        return np.zeros(length, dtype=np.intp)
    period = 2 * (size - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= size, period - idx, idx)


class PatchCropper:
    """Cuts patches from one image; build it once per image, then crop any
    subset of points (in batches, to keep memory flat)."""

    def __init__(self, im: Image.Image | np.ndarray, crop_size: int = 224):
        self.array = im if isinstance(im, np.ndarray) else to_rgb_array(im)
        if self.array.ndim != 3 or self.array.shape[2] != 3:
            raise ValueError(
                f"Expected an RGB image array of shape (H, W, 3), got"
                f" {self.array.shape}.")
        self.crop_size = crop_size
        # The point sits at this index of its patch: pyspacer's
        # int(center - size / 2) is center - ceil(size / 2).
        self.offset = (crop_size + 1) // 2

    def crop(self, rowcols: Sequence[Sequence[int]]) -> np.ndarray:
        """(N, crop_size, crop_size, 3) uint8 patches, one per (row, col)."""
        size = self.crop_size
        out = np.empty((len(rowcols), size, size, 3), dtype=np.uint8)
        for i, (row, col) in enumerate(rowcols):
            self.crop_into(out[i], int(row), int(col))
        return out

    def crop_into(self, out: np.ndarray, row: int, col: int) -> None:
        """Write the patch centred on (row, col) into ``out``."""
        height, width = self.array.shape[:2]
        size = self.crop_size
        top, left = row - self.offset, col - self.offset
        if top >= 0 and left >= 0 and top + size <= height \
                and left + size <= width:
            out[...] = self.array[top:top + size, left:left + size]
            return
        # Crosses the border: mirror only this patch's indices.
        rows = reflect_indices(top, size, height)
        cols = reflect_indices(left, size, width)
        out[...] = self.array[rows[:, None], cols[None, :]]

    def batches(self, rowcols: Sequence[Sequence[int]],
                batch_size: int) -> Iterable[np.ndarray]:
        """Patches in consecutive batches of at most ``batch_size``."""
        for start in range(0, len(rowcols), batch_size):
            yield self.crop(rowcols[start:start + batch_size])


def crop_patches(im: Image.Image,
                 rowcols: Sequence[Sequence[int]],
                 crop_size: int = 224) -> np.ndarray:
    """Patches of ``crop_size`` around each (row, col), as an
    (N, crop_size, crop_size, 3) uint8 RGB array (iterates like pyspacer's
    list of arrays)."""
    return PatchCropper(im, crop_size).crop(rowcols)
