"""
An extractor that computes nothing: random features of the right shape,
for tests and for wiring up a pipeline without network weights.

The class lives in ``spacer.extractors.base``, where pyspacer defines it
(and where its serialized class_path points); this is its short address.
"""
from __future__ import annotations

from spacer.extractors.base import MAX_FEATURE_DIM, DummyExtractor

__all__ = ['MAX_FEATURE_DIM', 'DummyExtractor']
