"""
crop_patches cuts each patch directly; it must equal pyspacer's crop of the
whole reflect-padded image, pixel for pixel, for every mode and size.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spacer.extractors.utils import (
    PatchCropper, crop_patches, reflect_indices)
from tests.extractors.conftest import border_points, padded_reference_crops

MODES = ['1', 'L', 'LA', 'P', 'RGB', 'RGBA', 'CMYK', 'I;16', 'I', 'F']


def image_of_mode(mode: str, height: int, width: int, seed: int = 0):
    """An image of ``mode`` with varied pixel values (beyond 0-255 for the
    wide modes, so Pillow's conversion of those is exercised)."""
    rng = np.random.default_rng(seed)
    if mode in ('RGB', 'RGBA', 'CMYK', 'LA'):
        bands = len(mode)
        return Image.fromarray(
            rng.integers(0, 256, (height, width, bands), dtype=np.uint8),
            mode)
    if mode == 'I;16':
        return Image.fromarray(
            rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if mode == 'I':
        return Image.fromarray(
            rng.integers(-300, 600, (height, width), dtype=np.int32), 'I')
    if mode == 'F':
        return Image.fromarray(
            rng.uniform(-50, 400, (height, width)).astype(np.float32), 'F')
    grey = Image.fromarray(
        rng.integers(0, 256, (height, width), dtype=np.uint8), 'L')
    if mode == 'P':
        return grey.convert('RGB').quantize(16)
    return grey.convert(mode)


@pytest.mark.parametrize('from_regions', [True, False])
@pytest.mark.parametrize('mode', MODES)
def test_every_mode_matches_padded_reference(mode, from_regions):
    im = image_of_mode(mode, 300, 260)
    assert im.mode == mode
    points = border_points(300, 260) + [(150, 120), (5, 250)]
    ours = PatchCropper(im, 224, from_regions).crop(points)
    assert ours.shape == (len(points), 224, 224, 3)
    assert ours.dtype == np.uint8
    np.testing.assert_array_equal(ours, padded_reference_crops(im, points))


@pytest.mark.parametrize('height,width', [
    (1, 1), (1, 7), (2, 3), (5, 400), (50, 80), (112, 113), (223, 224),
    (224, 224), (225, 226), (448, 449), (600, 300)])
@pytest.mark.parametrize('from_regions', [True, False])
def test_sizes_around_patch_size(height, width, from_regions):
    im = image_of_mode('RGB', height, width, seed=height * 1000 + width)
    points = border_points(height, width) + [(height // 3, width // 5)]
    np.testing.assert_array_equal(
        PatchCropper(im, 224, from_regions).crop(points),
        padded_reference_crops(im, points))


def test_regions_chosen_for_few_points_on_a_large_image():
    im = image_of_mode('RGB', 1000, 1200)
    cropper = PatchCropper(im, 224)
    points = [(0, 0), (500, 600), (999, 1199)]
    np.testing.assert_array_equal(cropper.crop(points),
                                  padded_reference_crops(im, points))
    assert cropper._array is None   # the image was never copied whole
    many = [(r, r) for r in range(0, 1000, 10)]
    np.testing.assert_array_equal(cropper.crop(many),
                                  padded_reference_crops(im, many))
    assert cropper._array is not None


def test_point_sits_at_112():
    array = np.zeros((500, 600, 3), dtype=np.uint8)
    array[300, 200] = (255, 1, 2)
    patch = crop_patches(Image.fromarray(array), [(300, 200)])[0]
    assert tuple(patch[112, 112]) == (255, 1, 2)
    assert patch.sum() == 258


def test_every_point_of_small_image_random_order():
    im = image_of_mode('RGB', 9, 13, seed=3)
    points = [(r, c) for r in range(9) for c in range(13)][::-1]
    np.testing.assert_array_equal(crop_patches(im, points, 224),
                                  padded_reference_crops(im, points))


def test_duplicate_points_give_duplicate_patches():
    im = image_of_mode('RGB', 100, 100)
    patches = crop_patches(im, [(10, 10), (10, 10)])
    np.testing.assert_array_equal(patches[0], patches[1])


def test_numpy_integer_points():
    im = image_of_mode('RGB', 100, 120)
    points = [(np.int64(3), np.int32(119)), (np.uint16(99), np.int8(0))]
    np.testing.assert_array_equal(
        crop_patches(im, points),
        padded_reference_crops(im, [(3, 119), (99, 0)]))


def test_batches_cover_all_points_in_order():
    im = image_of_mode('RGB', 80, 90)
    points = [(r, r) for r in range(0, 80, 3)]
    cropper = PatchCropper(im, 224)
    batches = list(cropper.batches(points, 4))
    assert [len(b) for b in batches] == [4] * 6 + [3]
    np.testing.assert_array_equal(np.concatenate(batches),
                                  padded_reference_crops(im, points))


@pytest.mark.parametrize('size', [1, 2, 5])
def test_reflect_indices_match_numpy(size):
    base = np.arange(size)
    padded = np.pad(base, 30, mode='reflect')
    np.testing.assert_array_equal(
        reflect_indices(-30, size + 60, size), padded)


def test_odd_crop_size_matches_pyspacer_geometry():
    im = image_of_mode('RGB', 40, 50)
    points = [(0, 0), (20, 25), (39, 49)]
    np.testing.assert_array_equal(crop_patches(im, points, 31),
                                  padded_reference_crops(im, points, 31))


def test_rejects_non_rgb_array():
    with pytest.raises(ValueError, match='RGB image array'):
        PatchCropper(np.zeros((10, 10), dtype=np.uint8))
