"""Which feature extractor a run uses: a weights file, a serialized extractor,
or the weights-free default.

The default is a random-init EfficientNet-B0 written to a file with a fixed
seed (BatchNorm statistics recalibrated on texture patches so its features
carry information), loaded through the same path as real weights. It is
stated plainly wherever it is used: its features are not those of a network
trained on reef photos.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from spacer import config
from spacer.data_classes import DataLocation
from spacer.extractors import EfficientNetExtractor, FeatureExtractor
from spacer.extractors.data_files import file_sha256
from spacer.extractors.default_weights import default_extractor


@dataclass(frozen=True)
class ExtractorChoice:
    extractor: object
    note: str | None    # shown to the user when the choice needs a caveat


def _local_sha256(path: Path) -> str:
    return file_sha256(path)


def from_weights(path: Path | str) -> ExtractorChoice:
    """EfficientNet-B0 with the weights in a local file (CoralNet's
    `efficientnet_b0_ver1.pt` or any `{'net': state_dict}` torch file)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"Weights file not found: {path}")
    return ExtractorChoice(EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(path))},
        data_hashes={'weights': _local_sha256(path)}), None)


def from_json(path: Path | str) -> ExtractorChoice:
    """Any allow-listed extractor, as pyspacer serializes it. Local data
    files without a hash get one, so the run's features are keyed by the
    files' content. Raises ValueError naming the file and what is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as err:
        raise ValueError(f"Cannot read extractor JSON {path}: {err}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: an extractor JSON must be an object with "
                         "a class_path")
    # Validate the whole structure first: hashing walks data_locations,
    # which only the extractor's own checks vouch for.
    try:
        extractor = FeatureExtractor.deserialize(data)
    except ValueError as err:           # MessageError and ClassPathError
        raise ValueError(f"Extractor JSON {path}: {err}") from err
    hashes = dict(extractor.data_hashes)
    for key, loc in extractor.data_locations.items():
        if not hashes.get(key) and loc.storage_type == 'filesystem':
            hashes[key] = _hash_data_file(path, key, Path(loc.key))
    if hashes == extractor.data_hashes:
        return ExtractorChoice(extractor, None)
    return ExtractorChoice(FeatureExtractor.deserialize(
        {**extractor.serialize(), 'data_hashes': hashes}), None)


def _hash_data_file(json_path: Path, key: str, file: Path) -> str:
    try:
        return _local_sha256(file)
    except (OSError, ValueError) as err:
        reason = ('is a folder, not a file' if isinstance(err, IsADirectoryError)
                  else 'was not found' if isinstance(err, FileNotFoundError)
                  else f'cannot be read ({err})')
        raise ValueError(f"Extractor JSON {json_path}: data file "
                         f"data_locations[{key!r}] {file} {reason}.") from err


def default_weights_dir() -> Path:
    """Where the default weights file is kept between runs."""
    configured = config.get('EXTRACTORS_CACHE_DIR')
    if configured:
        return Path(configured)
    base = os.environ.get('XDG_CACHE_HOME') or Path.home() / '.cache'
    return Path(base) / 'spacer'


def default(folder: Path | str | None = None, seed: int = 0,
            say: Callable[[str], None] | None = None) -> ExtractorChoice:
    """The weights-free default extractor, its weights file made once in
    `folder` (default: `default_weights_dir()`) and reused after."""
    folder = Path(folder) if folder else default_weights_dir()
    if say is not None:
        say(f"Preparing the default extractor in {folder} (the first time "
            "this builds its weights: a few seconds to a minute)...")
    extractor = default_extractor(folder, seed=seed)
    path = extractor.data_locations['weights'].key
    note = (f"No weights given: using the built-in default extractor, a "
            f"randomly initialized EfficientNet-B0 (fixed seed {seed}, "
            f"BatchNorm statistics recalibrated on synthetic texture patches) "
            f"saved to {path}. It is NOT trained on reef photos: expect "
            f"much lower accuracy than with real weights (--weights).")
    return ExtractorChoice(extractor, note)
