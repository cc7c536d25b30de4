"""Percent cover: the figure reef surveys publish.

An image's cover of a label is the share of its points predicted as that
label, in percent (so each image's cover sums to 100). The survey's cover is
the mean of its images' covers, each image weighing the same, as point-count
surveys report it. Counts are kept per image and label only, so a survey of
any size costs a few integers per image.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from spacer_survey.partial_csv import PartialCsvWriter

SURVEY_ROW = 'All images (mean)'


class CoverTally:
    """Points per predicted label, per image, in the order images come."""

    def __init__(self, labels: list[str]):
        self.labels = list(labels)
        self.counts: dict[str, Counter] = {}

    def add(self, name: str, label: str) -> None:
        self.counts.setdefault(name, Counter())[label] += 1
        if label not in self.labels:
            self.labels.append(label)

    def image_cover(self, name: str) -> dict[str, float]:
        counts = self.counts[name]
        total = sum(counts.values())
        return {label: 100 * counts[label] / total for label in self.labels}

    def survey_cover(self) -> dict[str, float]:
        if not self.counts:
            return {label: 0.0 for label in self.labels}
        covers = [self.image_cover(name) for name in self.counts]
        return {label: sum(c[label] for c in covers) / len(covers)
                for label in self.labels}

    def write_csv(self, path: Path | str) -> None:
        """cover.csv: Name, Points, then one column of percent cover per
        label; the last row is the survey's mean."""
        writer = PartialCsvWriter(path, ['Name', 'Points'] + self.labels)
        for name, counts in self.counts.items():
            cover = self.image_cover(name)
            writer.writerow([name, sum(counts.values())]
                            + [f'{cover[l]:.2f}' for l in self.labels])
        survey = self.survey_cover()
        writer.writerow([SURVEY_ROW, sum(sum(c.values()) for c in self.counts.values())]
                        + [f'{survey[l]:.2f}' for l in self.labels])
        writer.close()
