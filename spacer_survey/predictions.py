"""Classifier scores as CoralNet writes them: predictions.csv.

One row per point, in CoralNet's export dialect: Name, Row, Column, then
`Machine suggestion N` / `Machine confidence N` for the 5 best labels
(CoralNet's NUM_SUGGESTIONS), confidences as whole percentages as CoralNet
stores them, and, with an accept threshold, whether the point is accepted or
needs review. Rows are written as they come, so a survey of any size costs
one image's rows of memory.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spacer_survey.partial_csv import PartialCsvWriter

TOP_K = 5
ACCEPTED, NEEDS_REVIEW = 'accepted', 'needs review'
STATUS_COLUMN = 'Status'


@dataclass(frozen=True)
class Prediction:
    """A classified point: its best `TOP_K` labels, best first."""
    name: str
    row: int
    col: int
    ranked: tuple[tuple[str, float], ...]

    @property
    def label(self) -> str:
        return self.ranked[0][0]

    @property
    def score(self) -> float:
        return self.ranked[0][1]

    @property
    def confidence(self) -> int:
        """The top score as CoralNet shows it: a whole percentage."""
        return confidence_percent(self.score)


def confidence_percent(score: float) -> int:
    """A score (0-1) as CoralNet stores it: an integer percentage."""
    return int(round(100 * float(score)))


def is_accepted(score: float, threshold: float | None) -> bool:
    """CoralNet's rule: accept when the confidence percentage reaches the
    threshold's. No threshold: nothing is accepted automatically."""
    return (threshold is not None
            and confidence_percent(score) >= confidence_percent(threshold))


def rank(scores: list[float], classes: list, k: int = TOP_K
         ) -> tuple[tuple[str, float], ...]:
    """The k best (label, score) pairs; ties keep the classes' order."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind='stable')[:k]
    return tuple((str(classes[i]), float(scores[i])) for i in order)


def header(k: int = TOP_K, with_status: bool = False) -> list[str]:
    columns = ['Name', 'Row', 'Column']
    for place in range(1, k + 1):
        columns += [f'Machine suggestion {place}', f'Machine confidence {place}']
    return columns + ([STATUS_COLUMN] if with_status else [])


class PredictionsWriter(PartialCsvWriter):
    """predictions.csv, written row by row and renamed into place only when
    complete (`close`)."""

    def __init__(self, path: Path | str, threshold: float | None = None,
                 k: int = TOP_K):
        super().__init__(path, header(k, threshold is not None))
        self.threshold = threshold
        self.k = k

    def write(self, predictions: list[Prediction]) -> None:
        for p in predictions:
            cells: list = [p.name, p.row, p.col]
            for label, score in p.ranked[:self.k]:
                cells += [label, confidence_percent(score)]
            cells += [''] * (3 + 2 * self.k - len(cells))
            if self.threshold is not None:
                cells.append(ACCEPTED if is_accepted(p.score, self.threshold)
                             else NEEDS_REVIEW)
            self.writerow(cells)


def write_csv(path: Path | str, predictions: list[Prediction],
              k: int = TOP_K, threshold: float | None = None) -> None:
    """Write predictions.csv at once (atomically)."""
    writer = PredictionsWriter(path, threshold, k)
    writer.write(predictions)
    writer.close()


def read_csv(path: Path | str) -> list[Prediction]:
    """Read a predictions.csv written here (scores to the whole percent)."""
    with Path(path).open(newline='', encoding='utf-8') as handle:
        reader = csv.reader(handle)
        columns = next(reader)
        pairs_end = 3 + 2 * sum(c.startswith('Machine suggestion ')
                                for c in columns)
        result = []
        for cells in reader:
            pairs = [(cells[i], int(cells[i + 1]) / 100)
                     for i in range(3, pairs_end, 2) if cells[i]]
            result.append(Prediction(cells[0], int(cells[1]), int(cells[2]),
                                     tuple(pairs)))
        return result
