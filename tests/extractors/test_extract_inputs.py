"""check_extract_inputs: limits and coordinates, with pyspacer's messages."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spacer import config
from spacer.exceptions import DataLimitError, RowColumnInvalidError
from spacer.extract_inputs import check_extract_inputs

IMAGE = Image.new('RGB', (200, 100))   # width 200, height 100


def test_valid_points_pass():
    check_extract_inputs(IMAGE, [(0, 0), (99, 199), (50, 100)], 'img.jpg')


def test_numpy_integers_accepted():
    check_extract_inputs(
        IMAGE, [(np.int64(5), np.int32(7)), (np.uint16(99), np.int8(0))],
        'img.jpg')


def test_pixel_limit(monkeypatch):
    monkeypatch.setattr(config, 'MAX_IMAGE_PIXELS', 19999)
    with pytest.raises(DataLimitError) as info:
        check_extract_inputs(IMAGE, [(0, 0)], 'big.jpg')
    assert str(info.value) == (
        "Image big.jpg has 200 x 100 = 20000 total pixels, which is larger"
        " than the max allowed of 19999.")


def test_point_limit(monkeypatch):
    monkeypatch.setattr(config, 'MAX_POINTS_PER_IMAGE', 3)
    with pytest.raises(DataLimitError) as info:
        check_extract_inputs(IMAGE, [(1, 1)] * 4, 'img.jpg')
    assert str(info.value) == (
        "4 point locations were specified for image img.jpg, and that's"
        " larger than the max allowed of 3.")


def test_default_point_limit_is_1000():
    check_extract_inputs(IMAGE, [(1, 1)] * 1000, 'img.jpg')
    with pytest.raises(DataLimitError):
        check_extract_inputs(IMAGE, [(1, 1)] * 1001, 'img.jpg')


def test_empty_point_list():
    with pytest.raises(RowColumnInvalidError, match='No point locations'):
        check_extract_inputs(IMAGE, [], 'img.jpg')


@pytest.mark.parametrize('rowcol,message', [
    ((100, 5), "img.jpg: Row value 100 falls outside this image's valid"
               " range of 0-99."),
    ((5, 200), "img.jpg: Column value 200 falls outside this image's valid"
               " range of 0-199."),
    ((-1, 5), "img.jpg: Row values must be non-negative. Given value was: -1"),
    ((5, -2), "img.jpg: Column values must be non-negative."
              " Given value was: -2"),
    ((1.0, 5), "img.jpg: Row values must be integers. Given value was: 1.0"),
    ((5, 2.5), "img.jpg: Column values must be integers."
               " Given value was: 2.5"),
    (('3', 5), "img.jpg: Row values must be integers. Given value was: 3"),
    ((True, 5), "img.jpg: Row values must be integers."
                " Given value was: True"),
    ((np.float64(3), 5), "img.jpg: Row values must be integers."
                         " Given value was: 3.0"),
])
def test_invalid_coordinates(rowcol, message):
    with pytest.raises(RowColumnInvalidError) as info:
        check_extract_inputs(IMAGE, [(0, 0), rowcol], 'img.jpg')
    assert str(info.value) == message


def test_type_errors_come_before_sign_errors_like_pyspacer():
    with pytest.raises(RowColumnInvalidError, match='Column values must be'
                                                    ' integers'):
        check_extract_inputs(IMAGE, [(-1, 2.5)], 'img.jpg')


def test_point_that_is_not_a_pair():
    with pytest.raises(RowColumnInvalidError, match='pair'):
        check_extract_inputs(IMAGE, [(1, 2, 3)], 'img.jpg')


def test_reexported_by_task_utils():
    from spacer.task_utils import check_extract_inputs as reexported
    assert reexported is check_extract_inputs
