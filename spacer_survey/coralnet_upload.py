"""coralnet_upload.csv: the predictions as CoralNet's annotation upload
takes them (Name, Row, Column, Label; labels are the source's short codes,
rows and columns 0-based, as in CoralNet's export).

CoralNet replaces an image's points with those of the upload, so every point
is written: accepted points carry their machine label, points that need
review have an empty Label and stay unannotated for a person. Without an
accept threshold every point carries its top label.
"""
from __future__ import annotations

from pathlib import Path

from spacer_survey.partial_csv import PartialCsvWriter
from spacer_survey.predictions import Prediction, is_accepted

HEADER = ['Name', 'Row', 'Column', 'Label']


class UploadWriter(PartialCsvWriter):
    """coralnet_upload.csv, renamed into place when complete."""

    def __init__(self, path: Path | str, threshold: float | None):
        super().__init__(path, HEADER)
        self.threshold = threshold

    def write(self, predictions: list[Prediction]) -> None:
        for p in predictions:
            keep = self.threshold is None or is_accepted(p.score, self.threshold)
            self.writerow([p.name, p.row, p.col, p.label if keep else ''])
