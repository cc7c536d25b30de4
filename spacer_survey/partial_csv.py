"""A CSV written row by row into a `.part` file that takes the final name
only when complete, so a stopped run never leaves a half file that looks
whole."""
from __future__ import annotations

import csv
from pathlib import Path


class PartialCsvWriter:
    """``writerow`` as rows come, then ``close`` (rename into place) or
    ``abandon`` (drop the partial file)."""

    def __init__(self, path: Path | str, header: list[str]):
        self.path = Path(path)
        self._partial = self.path.with_name(self.path.name + '.part')
        self._handle = self._partial.open('w', newline='', encoding='utf-8')
        self._writer = csv.writer(self._handle)
        self._writer.writerow(header)

    def writerow(self, cells: list) -> None:
        self._writer.writerow(cells)

    def close(self) -> None:
        self._handle.close()
        self._partial.replace(self.path)

    def abandon(self) -> None:
        self._handle.close()
        self._partial.unlink(missing_ok=True)
