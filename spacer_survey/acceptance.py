"""The accept threshold (CoralNet's "alleviate"): machine labels whose
confidence reaches it are accepted, the rest go to a person.

What a user needs to pick it: the share of the new points it accepts, and
the accuracy to expect on them, which is the accuracy on the validation
points that the same rule accepts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spacer_survey.predictions import confidence_percent


@dataclass(frozen=True)
class Acceptance:
    threshold: float
    points: int = 0                     # classified points
    accepted: int = 0
    validation_points: int = 0
    validation_accepted: int = 0
    validation_correct: int = 0         # of the accepted validation points

    @property
    def share_accepted(self) -> float | None:
        return self.accepted / self.points if self.points else None

    @property
    def expected_accuracy(self) -> float | None:
        """Accuracy on the validation points at or above the threshold."""
        return (self.validation_correct / self.validation_accepted
                if self.validation_accepted else None)

    @property
    def validation_share(self) -> float | None:
        return (self.validation_accepted / self.validation_points
                if self.validation_points else None)


def from_validation(threshold: float, valresults) -> Acceptance:
    """Validation figures at `threshold` (the same whole-percent rule as
    the predictions'). No validation results: figures left at 0."""
    if valresults is None:
        return Acceptance(threshold)
    scores = np.asarray(valresults.scores, dtype=float)
    percent = np.rint(100 * scores).astype(int) if scores.size else scores
    above = percent >= confidence_percent(threshold)
    correct = np.asarray(valresults.gt) == np.asarray(valresults.est)
    return Acceptance(threshold, validation_points=int(scores.size),
                      validation_accepted=int(above.sum()),
                      validation_correct=int((above & correct).sum()))
