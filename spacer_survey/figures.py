"""The report's charts, rendered to PNG bytes.

Figures are built on `matplotlib.figure.Figure` with the Agg canvas, never
through pyplot, so rendering needs no display and leaves no global state.
"""
from __future__ import annotations

import io

import numpy as np

from spacer.extras import extra_imports
from spacer_survey.validation_metrics import LabelStats, ThresholdPoint

with extra_imports():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

DPI = 100


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=DPI, bbox_inches='tight')
    return buffer.getvalue()


def confusion_matrix_png(matrix: np.ndarray, labels: list[str]) -> bytes:
    """Row-normalized colours (recall per true label), raw counts written in
    each cell, so small and large labels read alike."""
    n = len(labels)
    size = max(4.0, 0.55 * n + 2.0)
    figure = Figure(figsize=(size + 1, size))
    axes = figure.add_subplot()
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros(matrix.shape, float),
                      where=totals > 0)
    image = axes.imshow(share, cmap='Blues', vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04,
                    label='share of the true label')
    axes.set_xticks(range(n), labels, rotation=45, ha='right')
    axes.set_yticks(range(n), labels)
    axes.set_xlabel('predicted label')
    axes.set_ylabel('true label')
    axes.set_title('Confusion matrix (validation points)')
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    axes.text(j, i, str(matrix[i, j]), ha='center',
                              va='center', fontsize=8,
                              color='white' if share[i, j] > 0.6 else 'black')
    return _png(figure)


def per_label_png(stats: list[LabelStats]) -> bytes:
    """Accuracy bar per label, its validation count written on the bar."""
    n = len(stats)
    figure = Figure(figsize=(max(5.0, 0.5 * n + 2), 4))
    axes = figure.add_subplot()
    accuracies = [s.accuracy or 0.0 for s in stats]
    bars = axes.bar(range(n), accuracies, color='tab:blue')
    for bar, s in zip(bars, stats):
        axes.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + 0.01,
                  f'n={s.count}', ha='center', va='bottom', fontsize=8)
    axes.set_xticks(range(n), [s.label for s in stats], rotation=45,
                    ha='right')
    axes.set_ylim(0, 1.1)
    axes.set_ylabel('accuracy')
    axes.set_title('Accuracy per label (validation points)')
    return _png(figure)


def threshold_curve_png(curve: list[ThresholdPoint]) -> bytes:
    """Both quantities against the threshold: pick the threshold where the
    accuracy is good enough and see what share of points it leaves."""
    figure = Figure(figsize=(6, 4))
    axes = figure.add_subplot()
    thresholds = [p.threshold for p in curve]
    axes.plot(thresholds, [p.fraction_above for p in curve],
              label='fraction of points with score >= threshold',
              color='tab:orange')
    accurate = [(p.threshold, p.accuracy_above) for p in curve
                if p.accuracy_above is not None]
    if accurate:
        xs, ys = zip(*accurate)
        axes.plot(xs, ys, label='accuracy on those points', color='tab:blue')
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.05)
    axes.set_xlabel('confidence threshold')
    axes.grid(alpha=0.3)
    axes.legend(loc='lower left', fontsize=8)
    axes.set_title('Confidence threshold trade-off (validation points)')
    return _png(figure)


def cover_png(covers: list[tuple[str, dict[str, float]]],
              colours: dict[str, tuple[int, int, int]]) -> bytes:
    """One stacked bar of percent cover per image (the survey's mean
    first), labels in the same colours as on the photos."""
    names = [name for name, _ in covers]
    labels = list(colours)
    figure = Figure(figsize=(8, max(2.5, 0.28 * len(covers) + 1.5)))
    axes = figure.add_subplot()
    left = np.zeros(len(covers))
    for label in labels:
        values = np.array([cover.get(label, 0.0) for _, cover in covers])
        if not values.any():
            continue
        axes.barh(range(len(covers)), values, left=left, label=label,
                  color=[c / 255 for c in colours[label]],
                  edgecolor='white', linewidth=0.5)
        left += values
    axes.set_yticks(range(len(covers)), names, fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel('percent cover (share of points)')
    axes.legend(loc='upper left', bbox_to_anchor=(1.01, 1), fontsize=8,
                frameon=False)
    axes.set_title('Percent cover by predicted label')
    return _png(figure)
