"""The types of labels and annotations (pyspacer's LabelId)."""
from __future__ import annotations

from typing import TypeAlias

LabelId: TypeAlias = int | str
Annotation: TypeAlias = tuple[int, int, LabelId]
