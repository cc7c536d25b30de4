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
    subset of points (in batches, to keep memory flat).

    For few points on a large image each patch's pixels are cut from the
    Pillow image itself (converted region by region, which is the same
    per-pixel conversion), so the whole image is never copied into an
    array; for many points the image is converted to one array first."""

    def __init__(self, im: Image.Image | np.ndarray, crop_size: int = 224,
                 from_regions: bool | None = None):
        if isinstance(im, np.ndarray):
            if im.ndim != 3 or im.shape[2] != 3:
                raise ValueError(
                    f"Expected an RGB image array of shape (H, W, 3), got"
                    f" {im.shape}.")
            self._image, self._array = None, im
            self.height, self.width = im.shape[:2]
        else:
            self._image, self._array = im, None
            self.width, self.height = im.size
        self.crop_size = crop_size
        # The point sits at this index of its patch: pyspacer's
        # int(center - size / 2) is center - ceil(size / 2).
        self.offset = (crop_size + 1) // 2
        self.from_regions = from_regions

    @property
    def array(self) -> np.ndarray:
        """The whole image as an (H, W, 3) uint8 RGB array (made once)."""
        if self._array is None:
            self._array = to_rgb_array(self._image)
        return self._array

    def crop(self, rowcols: Sequence[Sequence[int]]) -> np.ndarray:
        """(N, crop_size, crop_size, 3) uint8 patches, one per (row, col)."""
        size = self.crop_size
        out = np.empty((len(rowcols), size, size, 3), dtype=np.uint8)
        from_regions = self.from_regions
        if from_regions is None:
            # Regions pay while they copy less than converting the image.
            from_regions = self._array is None and \
                2 * len(rowcols) * size * size < self.height * self.width
        cut = self._cut_region_into if from_regions else self.crop_into
        for i, (row, col) in enumerate(rowcols):
            cut(out[i], int(row), int(col))
        return out

    def crop_into(self, out: np.ndarray, row: int, col: int) -> None:
        """Write the patch centred on (row, col) into ``out``."""
        size = self.crop_size
        top, left = row - self.offset, col - self.offset
        if top >= 0 and left >= 0 and top + size <= self.height \
                and left + size <= self.width:
            out[...] = self.array[top:top + size, left:left + size]
            return
        # Crosses the border: mirror only this patch's indices.
        rows = reflect_indices(top, size, self.height)
        cols = reflect_indices(left, size, self.width)
        out[...] = self.array[rows[:, None], cols[None, :]]

    def _cut_region_into(self, out: np.ndarray, row: int, col: int) -> None:
        """Like crop_into, reading only the pixels the patch uses."""
        size = self.crop_size
        top, left = row - self.offset, col - self.offset
        if top >= 0 and left >= 0 and top + size <= self.height \
                and left + size <= self.width:
            box = (left, top, left + size, top + size)
            out[...] = to_rgb_array(self._image.crop(box))
            return
        rows = reflect_indices(top, size, self.height)
        cols = reflect_indices(left, size, self.width)
        r0, c0 = int(rows.min()), int(cols.min())
        box = (c0, r0, int(cols.max()) + 1, int(rows.max()) + 1)
        region = to_rgb_array(self._image.crop(box))
        out[...] = region[(rows - r0)[:, None], (cols - c0)[None, :]]

    def batches(self, rowcols: Sequence[Sequence[int]],
                batch_size: int) -> Iterable[np.ndarray]:
        """Patches in consecutive batches of at most ``batch_size``."""
        for start in range(0, len(rowcols), batch_size):
            yield self.crop(rowcols[start:start + batch_size])


def crop_simple(im: np.ndarray, center: tuple[int, int], crop_size: int) -> np.ndarray:
    """The ``crop_size`` square of an (H, W, C) array whose center is
    ``center`` (row, col), as a view: pyspacer's crop, with no padding, so
    a square reaching past the array's edge comes back smaller (the caller
    pads first, as ``PatchCropper`` does)."""
    top = int(center[0] - crop_size / 2)
    left = int(center[1] - crop_size / 2)
    return im[top:top + crop_size, left:left + crop_size, :]


def crop_patches(im: Image.Image,
                 rowcols: Sequence[Sequence[int]],
                 crop_size: int = 224) -> np.ndarray:
    """Patches of ``crop_size`` around each (row, col), as an
    (N, crop_size, crop_size, 3) uint8 RGB array (iterates like pyspacer's
    list of arrays)."""
    return PatchCropper(im, crop_size).crop(rowcols)
