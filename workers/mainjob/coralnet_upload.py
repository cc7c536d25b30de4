"""coralnet_upload.csv: the predictions as CoralNet's annotation upload
takes them (Name, Row, Column, Label; labels are the source's short codes,
rows and columns 0-based, as in CoralNet's export).

CoralNet replaces an image's points with those of the upload, so every point
is written: accepted points carry their machine label, points that need
review have an empty Label and stay unannotated for a person. Without an
accept threshold every point carries its top label.
"""
from __future__ import annotations

import csv
from pathlib import Path

from workers.mainjob.predictions import Prediction, is_accepted

HEADER = ['Name', 'Row', 'Column', 'Label']


class UploadWriter:
    """Written row by row into a `.part` file, renamed when complete."""

    def __init__(self, path: Path | str, threshold: float | None):
        self.path = Path(path)
        self.threshold = threshold
        self._partial = self.path.with_name(self.path.name + '.part')
        self._handle = self._partial.open('w', newline='', encoding='utf-8')
        self._writer = csv.writer(self._handle)
        self._writer.writerow(HEADER)

    def write(self, predictions: list[Prediction]) -> None:
        for p in predictions:
            keep = self.threshold is None or is_accepted(p.score, self.threshold)
            self._writer.writerow([p.name, p.row, p.col, p.label if keep else ''])

    def close(self) -> None:
        self._handle.close()
        self._partial.replace(self.path)

    def abandon(self) -> None:
        self._handle.close()
        self._partial.unlink(missing_ok=True)
