"""Hostile input to the data classes and extractor fields: each gets a
MessageError that names the file, image or field and what is wrong, at
parse time rather than later in a task."""
from __future__ import annotations

import json
from io import BytesIO

import numpy as np
import pytest

from spacer.data_classes import DataLocation, ImageFeatures, ImageLabels
from spacer.exceptions import MessageError
from spacer.extractors import DummyExtractor, EfficientNetExtractor, FeatureExtractor
from spacer.messages import ExtractFeaturesMsg

DUMMY = 'spacer.extractors.dummy.DummyExtractor'
EFFNET = 'spacer.extractors.efficientnet.EfficientNetExtractor'
WEIGHTS = {'weights': {'storage_type': 'filesystem', 'key': '/w.pt', 'bucket_name': None}}
DIGEST = 'ab' * 32


# ---- extractor fields ---------------------------------------------------

def _extract_msg(extractor: dict) -> dict:
    return dict(job_token='t', extractor=extractor, rowcols=[[1, 2]],
                image_loc=dict(storage_type='memory', key='im'),
                feature_loc=dict(storage_type='memory', key='f'))


@pytest.mark.parametrize('extractor, match', [
    ({'class_path': DUMMY, 'data_locations': 5}, 'data_locations must be an object'),
    ({'class_path': DUMMY, 'data_locations': [1]}, 'data_locations must be an object'),
    ({'class_path': DUMMY, 'data_locations': {'w': 5}}, r"data_locations\['w'\]"),
    ({'class_path': EFFNET, 'data_locations': WEIGHTS, 'data_hashes': 5},
     'data_hashes must be an object'),
    ({'class_path': EFFNET, 'data_locations': WEIGHTS, 'data_hashes': ['a']},
     'data_hashes must be an object'),
    ({'class_path': EFFNET, 'data_locations': WEIGHTS, 'data_hashes': {'weights': 5}},
     r"data_hashes\['weights'\] must be a sha256"),
    ({'class_path': EFFNET, 'data_locations': WEIGHTS, 'data_hashes': {'weights': 'deadbeef'}},
     r"data_hashes\['weights'\] must be a sha256"),
    ({'class_path': DUMMY, 'bogus': 1}, "unknown field.*'bogus'"),
    ({'class_path': EFFNET, 'data_locations': WEIGHTS, 'feature_dim': 8},
     "unknown field.*'feature_dim'"),
    ({'class_path': DUMMY, 'feature_dim': 10 ** 12}, 'feature_dim must be an integer from 1'),
    ({'class_path': DUMMY, 'feature_dim': True}, 'feature_dim'),
    ({'class_path': EFFNET}, 'weights must be present'),
    ({}, "'class_path'"),
])
def test_bad_extractor_fields_are_message_errors(extractor, match):
    with pytest.raises(MessageError, match=match):
        ExtractFeaturesMsg.deserialize(_extract_msg(extractor))


def test_good_extractor_fields_still_load():
    # As in pyspacer: kept as given (an upper-case digest or '' then fails the
    # check when the file loads), and a hash with no file is unused.
    data = {'class_path': EFFNET, 'data_locations': WEIGHTS,
            'data_hashes': {'weights': DIGEST.upper(), 'definition': DIGEST}}
    effnet = FeatureExtractor.deserialize(data)
    assert effnet.serialize()['data_hashes'] == data['data_hashes']
    assert FeatureExtractor.deserialize(effnet.serialize()) == effnet
    assert EfficientNetExtractor(
        data_locations={'weights': DataLocation('memory', 'w')},
        data_hashes={'weights': ''}).data_hashes == {'weights': ''}
    dummy = DummyExtractor(feature_dim=16)
    assert FeatureExtractor.deserialize(dummy.serialize()) == dummy


# ---- npz feature files ----------------------------------------------------

FEAT = np.arange(48, dtype=float).reshape(3, 16)
META = np.array([1, 3, 16])
ROWS = np.array([1, 2, 3], dtype=np.uint16)


def _npz(**arrays) -> bytes:
    values = dict(meta=META, rows=ROWS, cols=ROWS, feat=FEAT)
    values.update(arrays)
    out = BytesIO()
    np.savez_compressed(out, **values)
    return out.getvalue()


@pytest.mark.parametrize('arrays, match', [
    (dict(meta=np.array([])), 'meta must be 3 integers'),
    (dict(meta=np.array([[1, 3, 16]])), 'meta must be 3 integers'),
    (dict(meta=np.array(['x', 'y', 'z'])), 'meta must be 3 integers'),
    (dict(meta=np.array([1, 5, 16])), 'disagrees with its header'),
    (dict(rows=np.array(['a', 'b', 'c'])), 'rows must be integers'),
    (dict(rows=np.array([1.5, 2, 3])), 'rows must be integers'),
    (dict(rows=np.array([1])), r'rows must be a 1-D array of 3 values'),
    (dict(cols=np.array([[1, 2, 3]])), r'cols must be a 1-D array of 3 values'),
    (dict(rows=np.array([-1, 2, 3])), 'rows has a negative value'),
    (dict(rows=np.array([2 ** 63, 2, 3], dtype=np.uint64)), 'too large'),
    (dict(feat=FEAT + 1j), 'feat must be real numbers'),
    (dict(feat=FEAT > 5), 'feat must be real numbers'),
    (dict(meta=np.array([1, 1, 2]), rows=np.array([1]), cols=np.array([1]),
          feat=np.array([['a', 'b']])), 'feat must be real numbers'),
    (dict(meta=np.array([1, 3, 0]), feat=np.zeros((3, 0))), 'non-empty 2-D'),
])
def test_malformed_npz_names_file_and_problem(arrays, match):
    with pytest.raises(MessageError, match=rf'bad\.fv: corrupt feature file \(.*{match}'):
        ImageFeatures.from_bytes(_npz(**arrays), 'bad.fv')


@pytest.mark.parametrize('raw', [b'[1, 2, 3]', b'[[[1, 2]]]'])
def test_legacy_json_features_of_wrong_rank_name_the_file(raw):
    with pytest.raises(MessageError, match=r'old\.json: Legacy features must be .*2-D'):
        ImageFeatures.from_bytes(raw, 'old.json')


@pytest.mark.parametrize('rows, feat', [
    (np.array([1, 2, 3], dtype=np.int64), FEAT.astype(np.float32)),
    (np.array([1, 2, 3], dtype=np.uint32), FEAT),
    (np.array([1, 2, 3], dtype=np.uint16), FEAT.astype(np.float16)),
    ([1, 2, 3], FEAT.tolist()),
])
def test_what_extractors_and_pyspacer_write_still_loads(rows, feat):
    features = ImageFeatures.from_arrays(rows, rows, feat)
    again = ImageFeatures.from_bytes(features.to_bytes(), 'ok.fv')
    assert again == features and list(again.rows) == [1, 2, 3]
    legacy = _npz(meta=np.array([0, 3, 16]), rows=np.array([]), cols=np.array([]))
    assert not ImageFeatures.from_bytes(legacy, 'legacy.fv').valid_rowcol


def test_from_arrays_refuses_float_and_negative_rows():
    with pytest.raises(MessageError, match='rows must be integers'):
        ImageFeatures.from_arrays([1.5, 2.0, 3.0], [1, 2, 3], FEAT)
    with pytest.raises(MessageError, match='cols has a negative value'):
        ImageFeatures.from_arrays([1, 2, 3], [1, -2, 3], FEAT)


# ---- labels -------------------------------------------------------------

def _key(name: str) -> str:
    return json.dumps(DataLocation('memory', name).serialize())


@pytest.mark.parametrize('label', [[1], {'a': 1}, None, True, 1.5])
def test_label_of_wrong_type_names_image_and_label(label):
    with pytest.raises(MessageError, match=rf"image 'img1': label .* must be an integer or a string"):
        ImageLabels.deserialize({_key('img1'): [[1, 2, 3], [1, 2, label]]})


def test_mixed_int_and_str_labels_in_one_image_are_refused():
    with pytest.raises(MessageError, match="image 'img1': labels must be all integers or all strings"):
        ImageLabels.deserialize({_key('img1'): [[1, 2, 3], [1, 3, 'x']]})


def test_mixed_int_and_str_labels_across_images_are_refused():
    labels = ImageLabels({DataLocation('memory', 'a'): [(1, 2, 3)]})
    with pytest.raises(MessageError, match="image 'b': label 'x' is a string but other"
                                           " images have integer labels"):
        labels.add_image(DataLocation('memory', 'b'), [(1, 2, 'x')])
    assert labels.classes_set == {3} and len(labels) == 1  # left as it was
    # Replacing the only image may change the kind.
    labels.add_image(DataLocation('memory', 'a'), [(1, 2, 'x')])
    assert labels.classes_set == {'x'}


def test_malformed_annotation_names_image():
    with pytest.raises(MessageError, match=r"image 'img1': an annotation must be \[row, col, label\]"):
        ImageLabels.deserialize({_key('img1'): [[1, 2]]})
    with pytest.raises(MessageError, match=r"image 'a': an annotation must be"):
        ImageLabels({DataLocation('memory', 'a'): ['abc']})


def test_numpy_labels_from_python_callers_are_accepted():
    labels = ImageLabels({DataLocation('memory', 'a'): [(1, 2, np.int64(3))],
                          DataLocation('memory', 'b'): [(1, 2, 4)]})
    assert labels.classes_set == {3, 4}


def test_the_filename_of_an_unparseable_url_is_its_last_segment():
    assert DataLocation('url', 'http://[::1/x/img.jpg').filename == 'img.jpg'


def test_image_labels_from_something_that_is_not_a_mapping():
    with pytest.raises(MessageError, match='must map feature locations'):
        ImageLabels([1])


@pytest.mark.parametrize('digest', ['', 'UPPER'])
def test_an_empty_or_upper_case_hash_does_not_match_as_in_pyspacer(tmp_path, digest):
    from spacer.exceptions import HashMismatchError
    from spacer.extractors.data_files import file_sha256, verified_digest
    path = tmp_path / 'weights.pt'
    path.write_bytes(b'weights')
    expected = file_sha256(path).upper() if digest == 'UPPER' else digest
    with pytest.raises(HashMismatchError):
        verified_digest('weights', DataLocation('filesystem', str(path)), expected)


@pytest.mark.parametrize('raw', [b'PK\x03\x04 truncated', b'[[1, 2], [3]]', b'not features'])
def test_corrupt_feature_files_are_also_assertion_errors_as_in_pyspacer(raw):
    # CoralNet's image_features_valid catches AssertionError to re-extract.
    with pytest.raises(AssertionError, match='<features>'):
        ImageFeatures.from_bytes(raw)
