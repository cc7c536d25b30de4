"""A small synthetic reef survey: photos, a CoralNet-style annotation export,
points to classify and their true labels.

Each photo is a few large organic regions, each covered by the texture of
one substrate label (sand grain, coralline crust, turf streaks, branching
stripes, massive-coral bumps), with lighting that varies from photo to
photo. Points are placed at random, as CoralNet's simple random point
generation does, and take the label of the region they fall in, so the
truth is known exactly and `spacer demo` can report an honest accuracy.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image
from scipy import ndimage

Texture = Callable[[np.random.Generator, int, int], np.ndarray]


def _noise(rng: np.random.Generator, height: int, width: int,
           sigma: float | tuple[float, float]) -> np.ndarray:
    """Gaussian-smoothed white noise scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(
        rng.standard_normal((height, width)).astype(np.float32), sigma)
    return field / (field.std() + 1e-6)


def _paint(base: tuple[float, float, float], shade: np.ndarray,
           tint: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Colour = base + shade * tint, per channel."""
    return (np.asarray(base, np.float32)
            + shade[..., None] * np.asarray(tint, np.float32))


def _sand(rng, h, w):
    grain = 0.07 * _noise(rng, h, w, 0.6) + 0.03 * _noise(rng, h, w, 8)
    pebbles = (_noise(rng, h, w, 1.2) > 2.2) * -0.25
    return _paint((0.86, 0.79, 0.62), grain + pebbles)


def _coralline(rng, h, w):
    mottle = 0.12 * _noise(rng, h, w, 10)
    crust = (_noise(rng, h, w, 3) > 0.9) * 0.12
    return _paint((0.78, 0.45, 0.62), mottle + crust, (1.0, 0.8, 0.9))


def _turf(rng, h, w):
    sigma = (0.8, 9.0) if rng.random() < 0.5 else (9.0, 0.8)
    strands = 0.16 * _noise(rng, h, w, sigma)
    return _paint((0.33, 0.40, 0.16), strands, (0.8, 1.0, 0.5))


def _branching(rng, h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(11, 15)
    warp = 2.5 * _noise(rng, h, w, 14)
    phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
    stripes = np.sin(2 * np.pi * phase + warp)
    return _paint((0.62, 0.50, 0.28), 0.22 * stripes, (1.0, 0.9, 0.6))


def _bumps(rng, h, w):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(8, 10)
    jitter = 1.5 * _noise(rng, h, w, 6)
    lumps = (np.cos(2 * np.pi * (xx + jitter) / period)
             * np.cos(2 * np.pi * (yy - jitter) / period))
    return _paint((0.72, 0.66, 0.40), 0.14 * lumps + 0.03 * _noise(rng, h, w, 1),
                  (1.0, 1.0, 0.7))


TEXTURES: dict[str, Texture] = {
    'Sand': _sand,
    'CCA': _coralline,
    'Turf': _turf,
    'Acro': _branching,
    'Pori': _bumps,
}


@dataclass(frozen=True)
class SurveySpec:
    """How big a survey to make. The defaults are the demo's size."""
    annotated_images: int = 16
    unannotated_images: int = 4
    width: int = 640
    height: int = 480
    points_per_image: int = 25
    labels: tuple[str, ...] = tuple(TEXTURES)
    seed: int = 0

    def __post_init__(self):
        unknown = set(self.labels) - set(TEXTURES)
        if unknown:
            raise ValueError(f"No texture for label(s) {sorted(unknown)}; "
                             f"known: {', '.join(TEXTURES)}")
        if len(self.labels) < 2:
            raise ValueError("A survey needs at least 2 labels")
        if self.annotated_images < 1 or self.points_per_image < 1:
            raise ValueError("A survey needs at least 1 annotated image "
                             "and 1 point per image")
        if min(self.width, self.height) < 32:
            raise ValueError("Images must be at least 32 x 32 pixels")


@dataclass(frozen=True)
class SurveyDataset:
    """Where a generated survey lies."""
    folder: Path
    images_dir: Path
    annotations_csv: Path
    points_csv: Path | None
    truth_csv: Path | None
    labels: tuple[str, ...]


def _coarse_noise(rng: np.random.Generator, height: int, width: int
                  ) -> np.ndarray:
    """Noise that varies over a tenth of the image, made at 1/8 scale
    (smoothing at full size with so wide a kernel is slow)."""
    small = _noise(rng, max(2, height // 8), max(2, width // 8),
                   max(height, width) / 80)
    zoom = (height / small.shape[0], width / small.shape[1])
    return ndimage.zoom(small, zoom, order=1, grid_mode=True,
                        mode='nearest')[:height, :width]


def _region_map(rng: np.random.Generator, h: int, w: int,
                labels: list[int]) -> np.ndarray:
    """A label index per pixel: Voronoi cells with wavy borders."""
    seeds = np.column_stack([rng.uniform(0, h, len(labels)),
                             rng.uniform(0, w, len(labels))])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wobble = 0.08 * max(h, w)
    yy = yy + wobble * _coarse_noise(rng, h, w)
    xx = xx + wobble * _coarse_noise(rng, h, w)
    dist = [(yy - sy) ** 2 + (xx - sx) ** 2 for sy, sx in seeds]
    return np.asarray(labels)[np.argmin(np.stack(dist), axis=0)]


def render_photo(rng: np.random.Generator, spec: SurveySpec,
                 label_indices: list[int]) -> tuple[Image.Image, np.ndarray]:
    """One survey photo and its per-pixel label index map."""
    h, w = spec.height, spec.width
    regions = _region_map(rng, h, w, label_indices)
    picture = np.zeros((h, w, 3), np.float32)
    for index in set(label_indices):
        texture = TEXTURES[spec.labels[index]](rng, h, w)
        picture[regions == index] = texture[regions == index]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    radius = ((yy / h - 0.5) ** 2 + (xx / w - 0.5) ** 2) / 0.5
    light = rng.uniform(0.88, 1.08) * (1 - 0.3 * radius)
    picture *= light[..., None]
    picture += np.asarray([0.0, 0.02, 0.05], np.float32) * rng.uniform(0, 1)
    pixels = (np.clip(picture, 0, 1) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(pixels), regions


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open('w', newline='', encoding='utf-8') as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def generate_survey(folder: Path | str, spec: SurveySpec = SurveySpec()
                    ) -> SurveyDataset:
    """Write a survey under `folder`: images/, annotations.csv (CoralNet
    export columns, including ones the main job ignores), points.csv (the
    unannotated photos' points) and truth.csv (their true labels).
    The same spec always gives the same files."""
    folder = Path(folder)
    images_dir = folder / 'images'
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    n_labels = len(spec.labels)
    # Deal labels out in shuffled rounds so every label appears often.
    deck: list[int] = []

    def draw(count: int) -> list[int]:
        while len(deck) < count:
            deck.extend(rng.permutation(n_labels).tolist())
        hand = [deck.pop() for _ in range(count)]
        if len(set(hand)) == 1 and n_labels > 1:
            hand[-1] = (hand[0] + 1) % n_labels
        return hand

    annotations, points, truth = [], [], []
    total = spec.annotated_images + spec.unannotated_images
    for number in range(total):
        name = f"survey_{number + 1:03d}.jpg"
        image, regions = render_photo(rng, spec, draw(int(rng.integers(2, 4))))
        image.save(images_dir / name, quality=90)
        rows = rng.integers(0, spec.height, spec.points_per_image)
        cols = rng.integers(0, spec.width, spec.points_per_image)
        seen = set()
        for row, col in zip(rows.tolist(), cols.tolist()):
            if (row, col) in seen:
                continue
            seen.add((row, col))
            label = spec.labels[regions[row, col]]
            if number < spec.annotated_images:
                annotations.append([name, '2024-05-1%d' % (number % 10),
                                    'Site A', 'synthetic', row, col, label])
            else:
                points.append([name, row, col])
                truth.append([name, row, col, label])

    annotations_csv = folder / 'annotations.csv'
    _write_csv(annotations_csv, ['Name', 'Date', 'Aux1', 'Annotator',
                                 'Row', 'Column', 'Label'], annotations)
    points_csv = truth_csv = None
    if points:
        points_csv = folder / 'points.csv'
        truth_csv = folder / 'truth.csv'
        _write_csv(points_csv, ['Name', 'Row', 'Column'], points)
        _write_csv(truth_csv, ['Name', 'Row', 'Column', 'Label'], truth)
    return SurveyDataset(folder, images_dir, annotations_csv, points_csv,
                         truth_csv, spec.labels)
