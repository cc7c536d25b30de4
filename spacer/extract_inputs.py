"""
Checks of an extraction request before any work is done: image size, point
count, and every (row, col). Messages follow pyspacer's wording, so callers
matching on them keep working; numpy integers are accepted as well.
"""
from __future__ import annotations

from numbers import Integral
from typing import Sequence

import numpy as np
from PIL import Image

from spacer import config
from spacer.exceptions import DataLimitError, RowColumnInvalidError


def _is_integer(value: object) -> bool:
    # bool is an int subclass but never a pixel coordinate.
    return isinstance(value, (int, np.integer, Integral)) \
        and not isinstance(value, (bool, np.bool_))


def check_extract_inputs(image: Image.Image,
                         rowcols: Sequence[Sequence[int]],
                         image_key: str) -> None:
    """Raise DataLimitError or RowColumnInvalidError, naming the image and
    the offending value, unless the image and points can be extracted."""
    width, height = image.size
    max_pixels = config.get('MAX_IMAGE_PIXELS')
    if width * height > max_pixels:
        raise DataLimitError(
            f"Image {image_key} has {width} x {height}"
            f" = {width * height} total pixels, which is larger"
            f" than the max allowed of {max_pixels}.")

    max_points = config.get('MAX_POINTS_PER_IMAGE')
    if len(rowcols) > max_points:
        raise DataLimitError(
            f"{len(rowcols)} point locations were specified for image"
            f" {image_key}, and that's larger than the max allowed of"
            f" {max_points}.")
    if len(rowcols) == 0:
        raise RowColumnInvalidError(
            f"{image_key}: No point locations were specified.")

    for point in rowcols:
        try:
            row, col = point
        except (TypeError, ValueError):
            raise RowColumnInvalidError(
                f"{image_key}: Each point must be a (row, column) pair."
                f" Given value was: {point!r}") from None
        # pyspacer's order: both types, then both signs, then both ranges.
        for check in (_check_integer, _check_non_negative):
            check(image_key, 'Row', row)
            check(image_key, 'Column', col)
        _check_in_range(image_key, 'Row', row, height)
        _check_in_range(image_key, 'Column', col, width)


def _check_integer(image_key: str, name: str, value: object) -> None:
    if not _is_integer(value):
        raise RowColumnInvalidError(
            f"{image_key}: {name} values must be integers."
            f" Given value was: {value}")


def _check_non_negative(image_key: str, name: str, value: int) -> None:
    if value < 0:
        raise RowColumnInvalidError(
            f"{image_key}: {name} values must be non-negative."
            f" Given value was: {value}")


def _check_in_range(image_key: str, name: str, value: int,
                    size: int) -> None:
    if value >= size:
        raise RowColumnInvalidError(
            f"{image_key}: {name} value {value} falls outside this image's"
            f" valid range of 0-{size - 1}.")
