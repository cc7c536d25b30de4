"""Data classes of pyspacer's contract, each with its exact JSON form.

pyspacer's module for them; each lives in a module of its own (locations,
feature files, labels), this one keeps the names where pyspacer has them,
and the validation results.
"""
from __future__ import annotations

import dataclasses

from spacer.data_location import DataLocation
from spacer.exceptions import MessageError
from spacer.image_features import UINT16_MAX, ImageFeatures, PointFeatures
from spacer.image_labels import ImageLabels, TrainingTaskLabels, annotated_rows
from spacer.label_types import Annotation, LabelId
from spacer.serialization import DataClass, require
from spacer.storage.factory import STORAGE_TYPES

__all__ = [
    'STORAGE_TYPES', 'Annotation', 'DataClass', 'DataLocation', 'ImageFeatures', 'ImageLabels',
    'UINT16_MAX', 'LabelId', 'PointFeatures', 'TrainingTaskLabels', 'ValResults', 'annotated_rows',
    'require',
]


@dataclasses.dataclass(eq=False, repr=False)
class ValResults(DataClass):
    """Validation outcome: gt and est index into classes; scores are the top
    calibrated probability per point. JSON: pyspacer's plain form."""

    scores: list[float]
    gt: list[int]
    est: list[int]
    classes: list[LabelId]

    def check_together(self) -> None:
        gt, est = self.gt, self.est
        if not (len(gt) == len(est) == len(self.scores)):
            raise MessageError("ValResults: scores, gt and est differ in length.")
        if gt and (max(max(gt), max(est)) >= len(self.classes) or min(min(gt), min(est)) < 0):
            raise MessageError("ValResults: gt/est must index into classes.")

    @classmethod
    def example(cls) -> ValResults:
        return cls(scores=[.9, .8, .7], gt=[0, 1, 0], est=[0, 1, 1], classes=[121, 1222])
