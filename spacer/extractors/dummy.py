"""
An extractor that computes nothing: random features of the right shape,
for tests and for wiring up a pipeline without network weights.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from spacer.data_classes import DataLocation, ImageFeatures
from spacer.exceptions import MessageError
from spacer.extractors.base import FeatureExtractor, _split_rowcols
from spacer.messages import ExtractFeaturesReturnMsg

# Real extractors give 1280 or 4096 values; far more is a typo whose
# features (points x feature_dim float64) would not fit in memory.
MAX_FEATURE_DIM = 100_000


class DummyExtractor(FeatureExtractor):

    def __init__(self,
                 data_locations: dict[str, DataLocation] | None = None,
                 feature_dim: int = 4096,
                 **kwargs):
        super().__init__(
            {} if data_locations is None else data_locations, **kwargs)
        # Match the feature_dim of any classifier these features will meet.
        if isinstance(feature_dim, bool) or not isinstance(
                feature_dim, (int, np.integer)) \
                or not 1 <= feature_dim <= MAX_FEATURE_DIM:
            raise MessageError(
                f"DummyExtractor: feature_dim must be an integer from 1 to"
                f" {MAX_FEATURE_DIM}, not {feature_dim!r}.")
        self._feature_dim = int(feature_dim)

    @classmethod
    def class_path(cls) -> str:
        # pyspacer's module for this class; serialized messages must match.
        return 'spacer.extractors.base.DummyExtractor'

    @property
    def feature_dim(self) -> int:
        return self._feature_dim

    def __call__(self, im, rowcols: Sequence[Sequence[int]]) \
            -> tuple[ImageFeatures, ExtractFeaturesReturnMsg]:
        start_time = time.time()
        rows, cols = _split_rowcols(rowcols)
        feats = np.random.random((len(rows), self.feature_dim))
        features = ImageFeatures.from_arrays(
            rows, cols, feats, valid_rowcol=True)
        return features, ExtractFeaturesReturnMsg(
            extractor_loaded_remotely=False,
            runtime=time.time() - start_time)

    def serialize(self) -> dict:
        data = super().serialize()
        data['feature_dim'] = self.feature_dim
        return data
