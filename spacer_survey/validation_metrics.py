"""Figures a user needs from a classifier's validation results.

All computed from a `ValResults` (gt and est index into classes; scores are
the top calibrated probability of each validation point), so the report shows
exactly what training stored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelStats:
    """How the classifier did on one label's validation points."""
    label: str
    count: int          # validation points whose true label this is
    correct: int        # of those, predicted right
    predicted: int      # validation points predicted as this label

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.count if self.count else None


@dataclass(frozen=True)
class ThresholdPoint:
    """At confidence threshold t: share of points scored >= t and the
    accuracy on just those (None when no point reaches t)."""
    threshold: float
    fraction_above: float
    accuracy_above: float | None


def _arrays(valresults) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (np.asarray(valresults.gt, dtype=int),
            np.asarray(valresults.est, dtype=int),
            np.asarray(valresults.scores, dtype=float))


def overall_accuracy(valresults) -> float | None:
    gt, est, _ = _arrays(valresults)
    return float(np.mean(gt == est)) if gt.size else None


def confusion_matrix(valresults) -> np.ndarray:
    """Counts: row = true label, column = predicted label (classes order)."""
    gt, est, _ = _arrays(valresults)
    n = len(valresults.classes)
    matrix = np.zeros((n, n), dtype=int)
    np.add.at(matrix, (gt, est), 1)
    return matrix


def per_label(valresults) -> list[LabelStats]:
    matrix = confusion_matrix(valresults)
    return [LabelStats(label=str(label), count=int(matrix[i].sum()),
                       correct=int(matrix[i, i]),
                       predicted=int(matrix[:, i].sum()))
            for i, label in enumerate(valresults.classes)]


def threshold_curve(valresults, steps: int = 101) -> list[ThresholdPoint]:
    """The trade-off CoralNet users pick a confidence threshold from: the
    higher the threshold, the fewer points pass and the more accurate they
    are."""
    gt, est, scores = _arrays(valresults)
    correct = gt == est
    curve = []
    for threshold in np.linspace(0.0, 1.0, steps):
        above = scores >= threshold - 1e-12
        share = float(above.mean()) if scores.size else 0.0
        accuracy = float(correct[above].mean()) if above.any() else None
        curve.append(ThresholdPoint(float(threshold), share, accuracy))
    return curve
