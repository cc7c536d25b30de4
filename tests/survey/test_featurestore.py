"""Feature files are keyed by what the extractor computes, and only whole
files that hold every needed point are trusted."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from spacer.data_classes import DataLocation, ImageFeatures
from spacer.extractors import EfficientNetExtractor
from spacer.extractors.dummy import DummyExtractor
from spacer_survey.extractor_choice import from_json, from_weights
from spacer_survey.featurestore import FeatureStore, extractor_identity


def efficientnet(key: str, digest: str) -> EfficientNetExtractor:
    return EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', key)},
        data_hashes={'weights': digest})


def test_identity_follows_content_not_location():
    here = efficientnet('/a/weights.pt', 'ab' * 32)
    moved = efficientnet('/elsewhere/copy.pt', 'ab' * 32)
    other = efficientnet('/a/weights.pt', 'cd' * 32)
    assert extractor_identity(here) == extractor_identity(moved)
    assert extractor_identity(here) != extractor_identity(other)
    assert extractor_identity(DummyExtractor(feature_dim=8)) != \
        extractor_identity(DummyExtractor(feature_dim=9))


def test_feature_paths_keep_subfolders_and_stay_inside(tmp_path):
    store = FeatureStore(tmp_path, DummyExtractor(feature_dim=4))
    assert store.path_for('site 2/IMG_1.JPG') == \
        store.folder / 'site 2' / 'IMG_1.JPG.featurevector'
    assert store.path_for('../../etc/x.jpg') == store.folder / 'etc' / 'x.jpg.featurevector'
    saved = json.loads((store.folder / 'extractor.json').read_text())
    assert saved['feature_dim'] == 4


def test_has_points(tmp_path):
    store = FeatureStore(tmp_path, DummyExtractor(feature_dim=4))
    assert not store.has_points('a.jpg', [(1, 2)])
    store.path_for('a.jpg').parent.mkdir(parents=True, exist_ok=True)
    ImageFeatures.from_arrays([1, 5], [2, 6], np.ones((2, 4))).store(
        store.location('a.jpg'))
    assert store.has_points('a.jpg', [(1, 2)])
    assert store.has_points('a.jpg', [(5, 6), (1, 2)])
    assert not store.has_points('a.jpg', [(1, 2), (7, 7)])
    store.path_for('a.jpg').write_bytes(b'PK\x03\x04 torn')
    assert not store.has_points('a.jpg', [(1, 2)])


def test_extractor_from_weights_file_is_hashed(tmp_path):
    weights = tmp_path / 'w.pt'
    weights.write_bytes(b'not really weights, but hashable')
    choice = from_weights(weights)
    assert choice.extractor.data_hashes['weights'] == \
        hashlib.sha256(weights.read_bytes()).hexdigest()
    assert choice.extractor.data_locations['weights'].key == str(weights.resolve())
    with pytest.raises(FileNotFoundError, match='Weights file not found'):
        from_weights(tmp_path / 'missing.pt')


def test_extractor_from_json(tmp_path):
    path = tmp_path / 'extractor.json'
    path.write_text(json.dumps(DummyExtractor(feature_dim=16).serialize()))
    assert from_json(path).extractor.feature_dim == 16
    path.write_text('[1, 2]')
    with pytest.raises(ValueError, match='must be an object'):
        from_json(path)
    path.write_text('{not json')
    with pytest.raises(ValueError, match='Cannot read extractor JSON'):
        from_json(path)
