"""Markers on the report's drawn photos stay apart where points are dense:
the photo is drawn at the column width, markers shrink with the point
spacing, hollow rings have a dark rim, and rare labels are drawn on top."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from spacer_survey import drawing
from spacer_survey.drawing import (MAX_MARKER_PX, MAX_WIDTH, MIN_MARKER_PX,
                                   draw_predictions, label_draw_order,
                                   marker_diameters)
from spacer_survey.predictions import Prediction

COLOURS = {'Common': (255, 0, 0), 'Rare': (0, 0, 255), 'Sand': (200, 180, 60)}


def point(row, col, label='Sand', score=0.9):
    others = [l for l in COLOURS if l != label]
    rest = (1 - score) / 2
    return Prediction('photo.png', row, col,
                      ((label, score), (others[0], rest), (others[1], rest)))


def photo(tmp_path, width=400, height=300, colour=(120, 120, 120)):
    path = tmp_path / 'photo.png'
    Image.fromarray(np.full((height, width, 3), colour, np.uint8)).save(path)
    return path


def rendered(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert('RGB')).astype(int)


def grid(spacing, n=6):
    return [(x * spacing, y * spacing) for x in range(n) for y in range(n)]


def test_marker_diameters_shrink_with_density_within_bounds():
    dense, sparse = marker_diameters(grid(11)), marker_diameters(grid(60))
    assert (dense < sparse).all()
    assert dense == pytest.approx(0.8 * 11)
    assert (sparse == MAX_MARKER_PX).all()
    assert (marker_diameters(grid(1)) == MIN_MARKER_PX).all()
    assert list(marker_diameters([(5, 5)])) == [MAX_MARKER_PX]
    assert len(marker_diameters([])) == 0


def test_a_tight_cluster_in_a_sparse_photo_gets_small_markers_of_its_own():
    """Sizes are per point: the cluster's markers shrink, the others keep
    the full size (a median over the photo would leave the cluster a blob)."""
    sparse = grid(80)
    cluster = [(500 + 3 * i, 500 + 2 * j) for i in range(5) for j in range(5)]
    sizes = marker_diameters(sparse + cluster)
    assert (sizes[:len(sparse)] == MAX_MARKER_PX).all()
    assert (sizes[len(sparse):] == MIN_MARKER_PX).all()  # 2 to 3 px apart


def test_small_photo_is_drawn_at_column_width(tmp_path):
    png = draw_predictions(photo(tmp_path, 400, 300), [point(150, 200)],
                           COLOURS)
    drawn = Image.open(io.BytesIO(png))
    # The photo fills the column width (the legend is beside it).
    assert drawn.height == round(300 * MAX_WIDTH / 400)
    assert drawn.width > MAX_WIDTH
    # The marker sits where the point is, scaled: row 150, col 200 -> 2.25x.
    pixels = rendered(png)
    assert tuple(pixels[round(150 * 2.25), round(200 * 2.25)]) == \
        pytest.approx(COLOURS['Sand'], abs=10)


def test_large_photo_is_drawn_down_to_column_width(tmp_path):
    png = draw_predictions(photo(tmp_path, 1800, 1000), [point(10, 10)],
                           COLOURS)
    assert Image.open(io.BytesIO(png)).height == 500


def test_hollow_ring_has_a_dark_rim_on_its_own_colour(tmp_path):
    # The photo is the label's colour: without a rim the ring would vanish.
    path = photo(tmp_path, 400, 300, colour=COLOURS['Sand'])
    png = draw_predictions(path, [point(100, 200, 'Sand', score=0.3)],
                           COLOURS, threshold=0.5)
    pixels = rendered(png)
    cy, cx = round(100 * 2.25), round(200 * 2.25)
    # Hollow: the centre shows the photo.
    assert tuple(pixels[cy, cx]) == pytest.approx(COLOURS['Sand'], abs=10)
    line = pixels[cy, cx - 12:cx + 13].sum(axis=1)
    dark = np.flatnonzero(line < 150) - 12
    # Dark pixels on both sides of the centre, around the ring's radius.
    assert (dark < -2).any() and (dark > 2).any()
    assert np.abs(dark).max() <= 11
    # The rest of the photo is untouched by it.
    assert tuple(pixels[cy, cx + 40]) == pytest.approx(COLOURS['Sand'], abs=10)


def test_hollow_rings_are_drawn_under_filled_dots(tmp_path):
    # A filled dot and a hollow ring at the same spot: the dot is on top.
    predictions = [point(100, 200, 'Rare', score=0.9),
                   point(100, 200, 'Common', score=0.2),
                   point(250, 350, 'Common', score=0.9)]
    pixels = rendered(draw_predictions(photo(tmp_path), predictions, COLOURS,
                                       threshold=0.5))
    assert tuple(pixels[225, 450]) == pytest.approx(COLOURS['Rare'], abs=10)


def test_rare_labels_are_drawn_last(tmp_path):
    predictions = ([point(100, 200, 'Rare')]
                   + [point(r, c, 'Common') for r, c in
                      [(100, 200), (20, 20), (20, 380), (280, 20), (280, 380)]]
                   + [point(150, 50, 'Sand'), point(150, 350, 'Sand')])
    assert label_draw_order(predictions) == ['Common', 'Sand', 'Rare']
    pixels = rendered(draw_predictions(photo(tmp_path), predictions, COLOURS))
    # Both labels have a dot at row 100, col 200: the rare one shows.
    assert tuple(pixels[225, 450]) == pytest.approx(COLOURS['Rare'], abs=10)


def test_dense_cluster_markers_stay_apart(tmp_path):
    # Points 5 px apart on a 400-px photo: 11.25 px apart once drawn, so
    # markers of 0.8 x that leave photo between neighbours.
    predictions = [point(100 + 5 * i, 200, 'Sand') for i in range(6)]
    pixels = rendered(draw_predictions(photo(tmp_path), predictions, COLOURS))
    centres = [round((100 + 5 * i) * 2.25) for i in range(6)]
    column = pixels[:, 450]
    for a, b in zip(centres, centres[1:]):
        # Some photo shows between each pair of neighbouring dots (a pixel
        # of tolerance for where Agg snaps the markers).
        between = column[a + 3:b + 2]
        assert (np.abs(between - 120).max(axis=1) <= 10).any()
        assert (between.sum(axis=1) < 150).any()     # and their dark edges


@pytest.mark.parametrize('threshold', [None, 0.5])
def test_the_legend_is_beside_the_photo_never_over_it(tmp_path, threshold):
    predictions = [point(280, 380, 'Sand', score=0.9), point(270, 370, 'Rare', score=0.2)]
    pixels = rendered(draw_predictions(photo(tmp_path), predictions, COLOURS,
                                       threshold=threshold))
    # The photo's top-left corner is photo only; the legend's text is in the
    # white strip right of the photo.
    assert (np.abs(pixels[:200, :400] - 120) <= 10).all()
    strip = pixels[:, MAX_WIDTH + 5:]
    assert (strip.sum(axis=2) < 200).sum() > 50
