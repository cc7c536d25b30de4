"""Photos with their predicted points drawn on, for the report.

Each point gets a ring in its label's colour and the label with its score
beside it, so a user can judge predictions against the picture itself.
"""
from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from spacer.extras import extra_imports
from workers.mainjob.predictions import Prediction

with extra_imports():
    from matplotlib import colormaps

MAX_WIDTH = 900


def label_colours(labels: list[str]) -> dict[str, tuple[int, int, int]]:
    """A distinct colour per label, stable for a given label list."""
    palette = colormaps['tab20' if len(labels) > 10 else 'tab10']
    return {label: tuple(int(255 * c) for c in palette(i % palette.N)[:3])
            for i, label in enumerate(labels)}


def draw_predictions(image_path: Path | str, predictions: list[Prediction],
                     colours: dict[str, tuple[int, int, int]]) -> bytes:
    """PNG bytes of the photo (scaled to at most MAX_WIDTH wide) with every
    prediction marked."""
    with Image.open(image_path) as opened:
        # Raw pixel order, no EXIF rotation: rows and columns refer to it.
        photo = opened.convert('RGB')
    scale = min(1.0, MAX_WIDTH / photo.width)
    if scale < 1.0:
        photo = photo.resize((round(photo.width * scale),
                              round(photo.height * scale)), Image.LANCZOS)
    canvas = ImageDraw.Draw(photo)
    font = ImageFont.load_default()
    radius = max(4, round(min(photo.size) / 70))
    for p in predictions:
        x, y = p.col * scale, p.row * scale
        colour = colours.get(p.label, (255, 255, 255))
        box = (x - radius, y - radius, x + radius, y + radius)
        canvas.ellipse(box, outline=(0, 0, 0), width=4)
        canvas.ellipse(box, outline=colour, width=2)
        text = f'{p.label} {p.score:.2f}'
        left, top, right, bottom = canvas.textbbox((x + radius + 2, y - 6),
                                                   text, font=font)
        canvas.rectangle((left - 1, top - 1, right + 1, bottom + 1),
                         fill=(0, 0, 0))
        canvas.text((x + radius + 2, y - 6), text, fill=colour, font=font)
    buffer = io.BytesIO()
    photo.save(buffer, format='PNG', optimize=True)
    return buffer.getvalue()
