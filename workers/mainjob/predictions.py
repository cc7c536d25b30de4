"""Turn classifier scores into the rows of predictions.csv.

One row per point: the top label and its score, then the runners-up, so a
user can sort by confidence in a spreadsheet or apply their own threshold.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TOP_K = 3


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


def rank(scores: list[float], classes: list, k: int = TOP_K
         ) -> tuple[tuple[str, float], ...]:
    """The k best (label, score) pairs; ties keep the classes' order."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind='stable')[:k]
    return tuple((str(classes[i]), float(scores[i])) for i in order)


def header(k: int = TOP_K) -> list[str]:
    columns = ['Name', 'Row', 'Column', 'Label', 'Score']
    for place in range(2, k + 1):
        columns += [f'Label {place}', f'Score {place}']
    return columns


def write_csv(path: Path | str, predictions: list[Prediction],
              k: int = TOP_K) -> None:
    """Write predictions.csv (atomically: a crash never leaves half a file)."""
    path = Path(path)
    partial = path.with_name(path.name + '.part')
    with partial.open('w', newline='', encoding='utf-8') as handle:
        writer = csv.writer(handle)
        writer.writerow(header(k))
        for p in predictions:
            cells = [p.name, p.row, p.col]
            for label, score in p.ranked:
                cells += [label, f'{score:.4f}']
            cells += [''] * (len(header(k)) - len(cells))
            writer.writerow(cells)
    partial.replace(path)


def read_csv(path: Path | str) -> list[Prediction]:
    """Read a predictions.csv written by `write_csv`."""
    with Path(path).open(newline='', encoding='utf-8') as handle:
        reader = csv.reader(handle)
        next(reader)
        result = []
        for cells in reader:
            pairs = [(cells[i], float(cells[i + 1]))
                     for i in range(3, len(cells) - 1, 2) if cells[i]]
            result.append(Prediction(cells[0], int(cells[1]), int(cells[2]),
                                     tuple(pairs)))
        return result
