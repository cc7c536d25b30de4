"""Photos with their predicted points drawn on, for the report.

Each point is a dot in its label's colour with a dark rim (visible on any
background); the labels are named once, in a legend beside the photo with
their point counts, instead of as text at every point, which overlapped
and shrank to nothing where points are close. Points that need review
(below the accept threshold) are hollow rings on a dark rim. Photos are
drawn at the page column's width, and each marker is sized from its own
nearest neighbour, so the points of a tight cluster stay apart; rarer
labels are drawn over commoner ones.
"""
from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from spacer.extras import extra_imports
from spacer_survey.predictions import Prediction, is_accepted

with extra_imports():
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

MAX_WIDTH = 900          # the page column: photos are drawn this wide
DPI = 100
MARKER_SIZE = 9          # legend marker size, points (1/72 inch)
MAX_MARKER_PX = 12.5     # marker diameter where points are far apart
MIN_MARKER_PX = 4.5      # ... and the smallest, however dense
MARKER_SPACING = 0.8     # diameter as a share of the typical point spacing
RIM_PX = 1.5             # width of the dark rim under a hollow ring, each side


def label_colours(labels: list[str]) -> dict[str, tuple[int, int, int]]:
    """A distinct colour per label, stable for a given label list."""
    palette = colormaps['tab20' if len(labels) > 10 else 'tab10']
    return {label: tuple(int(255 * c) for c in palette(i % palette.N)[:3])
            for i, label in enumerate(labels)}


def _rgb(colour: tuple[int, int, int]) -> tuple[float, float, float]:
    return tuple(c / 255 for c in colour)


def marker_diameters(xy) -> np.ndarray:
    """Each point's marker diameter in display pixels, for points at display
    positions xy (n x 2): 0.8 x the distance to its own nearest neighbour,
    clipped to [MIN_MARKER_PX, MAX_MARKER_PX]. Local, so a tight cluster in
    an otherwise sparse photo gets small markers and the rest keep theirs."""
    from scipy.spatial import cKDTree
    # Points at one spot share a marker size: shrinking cannot part them.
    spots, spot_of = np.unique(np.asarray(xy, dtype=float).reshape(-1, 2), axis=0,
                               return_inverse=True)
    if len(spots) < 2:
        return np.full(len(spot_of), MAX_MARKER_PX)
    nearest = cKDTree(spots).query(spots, k=2)[0][:, 1]
    return np.clip(MARKER_SPACING * nearest, MIN_MARKER_PX, MAX_MARKER_PX)[spot_of.ravel()]


def _marker_area(diameter_px: float) -> float:
    """matplotlib scatter size (points squared) for a diameter in pixels."""
    return (diameter_px * 72 / DPI) ** 2


def label_draw_order(predictions: list[Prediction]) -> list[str]:
    """Labels from most to least numerous (ties by name): drawn in this
    order, the rare labels end up on top in a mixed cluster."""
    counts = Counter(p.label for p in predictions)
    return sorted(counts, key=lambda label: (-counts[label], label))


def draw_predictions(image_path: Path | str, predictions: list[Prediction],
                     colours: dict[str, tuple[int, int, int]],
                     threshold: float | None = None) -> bytes:
    """PNG bytes of the photo, scaled (up or down) to MAX_WIDTH wide, with
    every prediction marked and a legend of the labels present."""
    with Image.open(image_path) as opened:
        # Raw pixel order, no EXIF rotation: rows and columns refer to it.
        photo = opened.convert('RGB')
    scale = MAX_WIDTH / photo.width
    if photo.width != MAX_WIDTH:
        photo = photo.resize((MAX_WIDTH, max(1, round(photo.height * scale))),
                             Image.LANCZOS)
    width, height = photo.size
    figure = Figure(figsize=(width / DPI + 2.2, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, width / DPI / (width / DPI + 2.2), 1))
    axes.imshow(photo, interpolation='nearest')
    axes.set_xlim(-0.5, width - 0.5)
    axes.set_ylim(height - 0.5, -0.5)
    axes.axis('off')
    counts = Counter(p.label for p in predictions)
    order = label_draw_order(predictions)
    diameters = marker_diameters([(p.col * scale, p.row * scale) for p in predictions])
    px = 72 / DPI                                   # points per pixel
    # Line widths in pixels, scaled with each marker. Each marker's outer
    # edge (line included) is at its diameter; a ring's black rim goes
    # `rim` beyond it, so neighbouring rings are parted by black.
    edges = np.clip(diameters / 7, 0.75, 1.2 / px)  # black edge of a dot
    rings = np.maximum(1.0, diameters / 6)          # coloured ring
    rims = np.clip(diameters / 10, 0.75, RIM_PX)    # black rim, each side
    accepted = np.array([threshold is None or is_accepted(p.score, threshold)
                         for p in predictions], dtype=bool)
    labels = np.array([p.label for p in predictions], dtype=object)
    cols = np.array([p.col * scale for p in predictions])
    rows = np.array([p.row * scale for p in predictions])
    # Hollow rings (need review) first, then filled dots on top of them;
    # within each, the most numerous label first, so rarer ones stay visible.
    for filled, zorder in ((False, 3), (True, 4)):
        for label in order:
            mine = (labels == label) & (accepted == filled)
            if not mine.any():
                continue
            colour = _rgb(colours.get(label, (255, 255, 255)))
            if filled:
                axes.scatter(cols[mine], rows[mine],
                             s=_marker_area(diameters[mine] - edges[mine]), c=[colour],
                             edgecolors='black', linewidths=edges[mine] * px,
                             zorder=zorder, gid=f'dots:{label}')
                continue
            # A black ring a little wider than the coloured one over it: a
            # dark rim on both sides, visible on any background.
            area = _marker_area(diameters[mine] - rings[mine])
            for edge_colour, line_px, gid in (
                    ('black', rings[mine] + 2 * rims[mine], f'rim:{label}'),
                    ([colour], rings[mine], f'ring:{label}')):
                axes.scatter(cols[mine], rows[mine], s=area, c='none',
                             edgecolors=edge_colour, linewidths=line_px * px,
                             zorder=zorder, gid=gid)
    handles = [Line2D([], [], linestyle='none', marker='o',
                      markersize=MARKER_SIZE, markerfacecolor=_rgb(
                          colours.get(label, (255, 255, 255))),
                      markeredgecolor='black', label=f'{label} ({n})')
               for label, n in counts.most_common()]
    if threshold is not None:
        handles.append(Line2D([], [], linestyle='none', marker='o',
                              markersize=MARKER_SIZE, markerfacecolor='none',
                              markeredgecolor='grey', markeredgewidth=2,
                              label='hollow: needs review'))
    figure.legend(handles=handles, loc='upper left', frameon=False,
                  bbox_to_anchor=(width / DPI / (width / DPI + 2.2) + 0.01, 1),
                  fontsize=10, title='predicted label (points)',
                  title_fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=DPI)
    return buffer.getvalue()
