"""Photos with their predicted points drawn on, for the report.

Each point is a dot in its label's colour with a dark rim (visible on any
background); the labels are named once, in a legend beside the photo with
their point counts, instead of as text at every point, which overlapped
and shrank to nothing where points are close. Points that need review
(below the accept threshold) are hollow rings.
"""
from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

from PIL import Image

from spacer.extras import extra_imports
from spacer_survey.predictions import Prediction, is_accepted

with extra_imports():
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

MAX_WIDTH = 900
DPI = 100
MARKER_SIZE = 9          # points (1/72 inch): the same at any photo size


def label_colours(labels: list[str]) -> dict[str, tuple[int, int, int]]:
    """A distinct colour per label, stable for a given label list."""
    palette = colormaps['tab20' if len(labels) > 10 else 'tab10']
    return {label: tuple(int(255 * c) for c in palette(i % palette.N)[:3])
            for i, label in enumerate(labels)}


def _rgb(colour: tuple[int, int, int]) -> tuple[float, float, float]:
    return tuple(c / 255 for c in colour)


def draw_predictions(image_path: Path | str, predictions: list[Prediction],
                     colours: dict[str, tuple[int, int, int]],
                     threshold: float | None = None) -> bytes:
    """PNG bytes of the photo (at most MAX_WIDTH wide) with every
    prediction marked and a legend of the labels present."""
    with Image.open(image_path) as opened:
        # Raw pixel order, no EXIF rotation: rows and columns refer to it.
        photo = opened.convert('RGB')
        scale = min(1.0, MAX_WIDTH / photo.width)
        if scale < 1.0:
            photo = photo.resize((round(photo.width * scale),
                                  round(photo.height * scale)), Image.LANCZOS)
    width, height = photo.size
    figure = Figure(figsize=(width / DPI + 2.2, height / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, width / DPI / (width / DPI + 2.2), 1))
    axes.imshow(photo, interpolation='nearest')
    axes.set_xlim(-0.5, width - 0.5)
    axes.set_ylim(height - 0.5, -0.5)
    axes.axis('off')
    counts = Counter(p.label for p in predictions)
    for label in counts:
        colour = _rgb(colours.get(label, (255, 255, 255)))
        for accepted in (True, False):
            mine = [p for p in predictions if p.label == label and
                    (threshold is None or is_accepted(p.score, threshold))
                    == accepted]
            if not mine:
                continue
            axes.scatter([p.col * scale for p in mine],
                         [p.row * scale for p in mine], s=MARKER_SIZE ** 2,
                         c=[colour] if accepted else 'none',
                         edgecolors='black' if accepted else [colour],
                         linewidths=1.2 if accepted else 2.2, zorder=3)
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
