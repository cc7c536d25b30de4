"""Where the main job keeps feature files, and which ones are still good.

Features are stored per extractor: `features/<extractor id>/<image name>.featurevector`
under the output folder (or the S3 prefix of `--storage`, see `job_storage.py`),
where the id is a hash of what makes the extractor's output what it is (its
class, parameters and the sha256 of its data files, not where those files
lie). A re-run with the same extractor finds its earlier files and skips
those images; a different extractor gets a folder of its own, so features
from two networks never mix. Storage writes are atomic, so a file that
exists is whole; it is still opened and checked to hold every point the run
needs before it is trusted.

A photo can change under the same name (re-exported, replaced, truncated by
a bad copy), so next to each feature file lies `<image name>.source.json`
with the sha256 of the photo it was computed from. It is written *before*
the extraction is sent (and the old feature file removed), so a feature
file that exists always comes from the recorded content, even after a run
is killed mid-way; features are reused only while the photo's sha256 is
unchanged.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from spacer.data_classes import DataLocation, ImageFeatures
from spacer_survey.job_storage import (JobFiles, LocalFiles, S3Objects,
                                       record_of, safe_relative)

FEATURE_SUFFIX = '.featurevector'
SOURCE_SUFFIX = '.source.json'


def extractor_identity(extractor) -> str:
    """12 hex digits naming an extractor by what determines its features."""
    description = {key: value for key, value in extractor.serialize().items()
                   if key != 'data_locations'}
    text = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]


class FeatureStore:
    """The feature files of one extractor under an output folder, or under
    the S3 prefix of `--storage` (`job_storage`): the same layout."""

    def __init__(self, output: Path | str | JobFiles, extractor):
        self.files = (output if isinstance(output, (LocalFiles, S3Objects))
                      else LocalFiles(output))
        self.identity = extractor_identity(extractor)
        self.prefix = f'features/{self.identity}'
        self.folder = self.files.place(self.prefix)
        self.files.make_folder(self.prefix)
        description = f'{self.prefix}/extractor.json'
        if not self.files.exists(description):
            self.files.write_text(description, json.dumps(
                extractor.serialize(), indent=2, default=str))

    def key_for(self, image_name: str) -> str:
        """Feature file of the photo a CSV calls `image_name`, relative to
        the storage's root."""
        return f'{self.prefix}/{safe_relative(image_name)}{FEATURE_SUFFIX}'

    def path_for(self, image_name: str) -> Path | str:
        """Where that feature file lies (a path; an s3:// URL on S3)."""
        return self.files.place(self.key_for(image_name))

    def location(self, image_name: str) -> DataLocation:
        return self.files.location(self.key_for(image_name))

    def source_key(self, image_name: str) -> str:
        """Where the sha256 of the photo behind a feature file is kept."""
        return self.key_for(image_name)[:-len(FEATURE_SUFFIX)] + SOURCE_SUFFIX

    def recorded_source(self, image_name: str) -> str | None:
        """The photo sha256 recorded for a feature file, if readable."""
        digest = record_of(self.files, self.source_key(image_name)).get('sha256')
        return digest if isinstance(digest, str) else None

    def begin(self, image_name: str, source_sha256: str) -> None:
        """Before extracting features of the photo with this content: drop
        the old feature file, then record the content the new one will come
        from (in this order, so no stale file is ever vouched for)."""
        self.files.delete(self.key_for(image_name))
        self.files.write_text(self.source_key(image_name),
                              json.dumps({'sha256': source_sha256}))

    def has_points(self, image_name: str, rowcols: list[tuple[int, int]],
                   source_sha256: str | None = None) -> bool:
        """True if a finished feature file holds every one of `rowcols` and,
        when `source_sha256` is given, was made from the photo with that
        content."""
        if not self.files.exists(self.key_for(image_name)):
            return False
        if (source_sha256 is not None
                and self.recorded_source(image_name) != source_sha256):
            return False
        try:
            features = ImageFeatures.load(self.location(image_name))
        except Exception:   # unreadable: extract again, overwriting it
            return False
        if not features.valid_rowcol or not np.isfinite(features.feat).all():
            return False     # NaN features: from a broken network, not kept
        stored = set(zip(features.rows.tolist(), features.cols.tolist()))
        return all(tuple(rc) in stored for rc in rowcols)
