"""Where the main job keeps feature files, and which ones are still good.

Features are stored per extractor: `features/<extractor id>/<image name>.featurevector`,
where the id is a hash of what makes the extractor's output what it is (its
class, parameters and the sha256 of its data files, not where those files
lie). A re-run with the same extractor finds its earlier files and skips
those images; a different extractor gets a folder of its own, so features
from two networks never mix. Storage writes are atomic, so a file that
exists is whole; it is still opened and checked to hold every point the run
needs before it is trusted.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from spacer.data_classes import DataLocation, ImageFeatures

FEATURE_SUFFIX = '.featurevector'


def extractor_identity(extractor) -> str:
    """12 hex digits naming an extractor by what determines its features."""
    description = {key: value for key, value in extractor.serialize().items()
                   if key != 'data_locations'}
    text = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]


class FeatureStore:
    """The feature files of one extractor under an output folder."""

    def __init__(self, output_dir: Path | str, extractor):
        self.identity = extractor_identity(extractor)
        self.folder = Path(output_dir) / 'features' / self.identity
        self.folder.mkdir(parents=True, exist_ok=True)
        description = self.folder / 'extractor.json'
        if not description.exists():
            description.write_text(json.dumps(extractor.serialize(), indent=2,
                                              default=str))

    def path_for(self, image_name: str) -> Path:
        """Feature file of the photo a CSV calls `image_name` (sub-folders
        kept, so equal file names in two folders don't collide)."""
        relative = image_name.strip().replace('\\', '/').lstrip('/')
        safe = '/'.join(part for part in relative.split('/')
                        if part not in ('', '.', '..'))
        return self.folder / (safe + FEATURE_SUFFIX)

    def location(self, image_name: str) -> DataLocation:
        return DataLocation('filesystem', str(self.path_for(image_name)))

    def has_points(self, image_name: str,
                   rowcols: list[tuple[int, int]]) -> bool:
        """True if a finished feature file holds every one of `rowcols`."""
        path = self.path_for(image_name)
        if not path.is_file():
            return False
        try:
            features = ImageFeatures.load(self.location(image_name))
        except Exception:   # unreadable: extract again, overwriting it
            return False
        if not features.valid_rowcol:
            return False
        stored = set(zip(features.rows.tolist(), features.cols.tolist()))
        return all(tuple(rc) in stored for rc in rowcols)
