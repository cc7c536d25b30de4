"""What the tasks return, in pyspacer's JSON forms.

Plain data at the bottom of the package: the extractors and trainers build
these without importing the task messages.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from spacer.exceptions import MessageError
from spacer.label_types import LabelId
from spacer.serialization import DataClass, json_field


@dataclasses.dataclass(eq=False, repr=False)
class ExtractFeaturesReturnMsg(DataClass):
    """JSON: pyspacer's plain form (its fields; built with cls(**data))."""
    extractor_loaded_remotely: bool
    runtime: float

    @classmethod
    def example(cls) -> ExtractFeaturesReturnMsg:
        return cls(extractor_loaded_remotely=True, runtime=2.1)


@dataclasses.dataclass(eq=False, repr=False)
class TrainClassifierReturnMsg(DataClass):
    """JSON: pyspacer's plain form (its fields; built with cls(**data))."""
    acc: float
    pc_accs: list[float]
    ref_accs: list[float]
    runtime: float

    @classmethod
    def example(cls) -> TrainClassifierReturnMsg:
        return cls(acc=0.7, pc_accs=[0.4, 0.5, 0.6],
                   ref_accs=[0.55, 0.65, 0.64, 0.67, 0.70], runtime=123.4)


def _scores_to_json(scores: list) -> list:
    return [[row, col, list(s)] for row, col, s in scores]


def _scores_from_json(scores: Any, owner: str, _key: str) -> list:
    if not isinstance(scores, list) or any(
            not isinstance(s, (list, tuple)) or len(s) != 3 for s in scores):
        raise MessageError(f"{owner}: scores must be a list of [row, col, scores].")
    return [(row, col, s) for row, col, s in scores]


@dataclasses.dataclass(eq=False, repr=False)
class ClassifyReturnMsg(DataClass):
    """Scores per point, in the order of classes."""
    READ_FIRST = ('scores',)
    runtime: float = json_field()
    scores: list[tuple[int, int, list[float]]] = json_field(
        to_json=_scores_to_json, from_json=_scores_from_json)
    classes: list[LabelId] = json_field(to_json=list)
    valid_rowcol: bool = json_field()

    def __getitem__(self, rowcol: tuple[int, int]) -> list[float]:
        if not self.valid_rowcol:
            raise ValueError('Method requires valid rows and columns')
        for row, col, scores in self.scores:
            if (row, col) == tuple(rowcol):
                return scores
        raise KeyError(rowcol)

    @classmethod
    def example(cls) -> ClassifyReturnMsg:
        return cls(runtime=1.1,
                   scores=[(10, 20, [0.1, 0.2, 0.7]), (20, 40, [0.9, 0.06, 0.04])],
                   classes=[100, 12, 44], valid_rowcol=True)
