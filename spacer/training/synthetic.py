"""Feature files that look like a CoralNet source, for tests and benchmarks.

Random vectors with a constant per-class offset (pyspacer's
``make_random_data``) are separable by any classifier and say nothing about
accuracy. These are harder, in the ways real sources are: classes are
imbalanced, each image mixes a few classes, images differ from each other
(an image-level offset), and features are non-negative like pooled
activations. Values have float32 precision, as in every file an extractor
writes (the networks run in float32); this matters to speed, since such
files inflate almost twice as fast as full float64 noise. Deterministic for a seed (numpy's PCG64 stream), so two
environments reading the written files see the same data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from spacer.data_classes import DataLocation, ImageFeatures, ImageLabels


def make_source(directory: str | Path, n_labels: int, n_classes: int = 20,
                feature_dim: int = 1280, points_per_image: int = 50,
                seed: int = 0, noise: float = 1.0,
                class_names: list | None = None) -> ImageLabels:
    """Write ceil(n_labels / points_per_image) feature files; their labels.

    ``noise`` sets the difficulty (point noise relative to the class
    separation). ``class_names`` replaces the class ids 0..n-1 (e.g. str).
    """
    rng = np.random.default_rng(seed)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = list(range(n_classes)) if class_names is None else class_names
    if len(names) != n_classes:
        raise ValueError("class_names must have n_classes entries.")

    class_means = rng.normal(0.0, 0.35, size=(n_classes, feature_dim)) + 0.3
    # Zipf-like class frequencies, as in real annotation sets.
    frequency = 1.0 / np.arange(1, n_classes + 1) ** 0.8
    frequency /= frequency.sum()

    labels = ImageLabels()
    n_images = -(-n_labels // points_per_image)
    for image in range(n_images):
        count = min(points_per_image, n_labels - image * points_per_image)
        mix = rng.dirichlet(frequency * n_classes * 0.5)
        classes = rng.choice(n_classes, size=count, p=mix)
        offset = rng.normal(0.0, 0.25, size=feature_dim)
        feat = class_means[classes] + offset \
            + rng.normal(0.0, noise, size=(count, feature_dim))
        feat = np.maximum(feat, 0.0).astype(np.float32)
        # Distinct points on a 4000 x 3000 image.
        cells = rng.choice(4000 * 3000, size=count, replace=False)
        rows, cols = cells // 4000, cells % 4000
        loc = DataLocation('filesystem',
                           str(directory / f'img{image:05d}.featurevector'))
        ImageFeatures.from_arrays(rows, cols, feat).store(loc)
        labels.add_image(loc, [
            (int(r), int(c), names[k])
            for r, c, k in zip(rows, cols, classes)])
    return labels
