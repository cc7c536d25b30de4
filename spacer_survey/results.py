"""Where classified points go, one image at a time: predictions.csv,
coralnet_upload.csv, the cover tally and the accept counts, plus the few
images the report draws. Nothing here grows with the survey but a handful of
integers per image, so 2,000 photos cost what one does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from spacer_survey.coralnet_upload import UploadWriter
from spacer_survey.cover import CoverTally
from spacer_survey.predictions import Prediction, PredictionsWriter, is_accepted


@dataclass
class ResultPaths:
    predictions: Path
    upload: Path
    cover: Path


@dataclass
class ResultSink:
    """Receives each image's predictions as they come."""
    paths: ResultPaths
    labels: list[str]
    threshold: float | None = None
    images_to_draw: int = 4
    keep_all: bool = False          # keep every prediction (API, tests)
    points: int = 0
    accepted: int = 0
    drawn: dict[str, list[Prediction]] = field(default_factory=dict)
    kept: list[Prediction] = field(default_factory=list)

    def __post_init__(self):
        self.cover = CoverTally(self.labels)
        self._predictions = PredictionsWriter(self.paths.predictions,
                                              self.threshold)
        self._upload = UploadWriter(self.paths.upload, self.threshold)

    def add(self, name: str, predictions: list[Prediction]) -> None:
        self._predictions.write(predictions)
        self._upload.write(predictions)
        for p in predictions:
            self.cover.add(name, p.label)
            self.accepted += is_accepted(p.score, self.threshold)
        self.points += len(predictions)
        if len(self.drawn) < self.images_to_draw:
            self.drawn[name] = predictions
        if self.keep_all:
            self.kept.extend(predictions)

    def close(self) -> None:
        self._predictions.close()
        self._upload.close()
        self.cover.write_csv(self.paths.cover)

    def abandon(self) -> None:
        self._predictions.abandon()
        self._upload.abandon()
