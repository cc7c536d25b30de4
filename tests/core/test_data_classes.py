"""Feature files: pyspacer's npz layout, legacy JSON, large coordinates."""
import json
from io import BytesIO

import numpy as np
import pytest

from spacer.data_classes import DataLocation, ImageFeatures, ImageLabels, PointFeatures
from spacer.exceptions import MessageError, RowColumnMismatchError, RowColumnMissingError
from spacer.storage import storage_factory
from tests.conftest import FIXTURES, PYSPACER_FIXTURES


def test_reads_pyspacer_feature_files():
    loc = DataLocation('filesystem', str(PYSPACER_FIXTURES / 'features' / 'img00.featurevector'))
    feats = ImageFeatures.load(loc)
    assert (feats.npoints, feats.feature_dim, feats.valid_rowcol) == (12, 64, True)
    with np.load(loc.key) as raw:
        assert np.array_equal(feats.feat, raw['feat'])
        assert feats[(int(raw['rows'][3]), int(raw['cols'][3]))].tolist() == raw['feat'][3].tolist()
    assert len(feats.point_features) == 12 and isinstance(feats.point_features[0], PointFeatures)


def test_written_files_have_pyspacers_layout(tmp_path):
    feats = ImageFeatures.example()
    path = tmp_path / 'f.featurevector'
    feats.store(DataLocation('filesystem', str(path)))
    with np.load(path) as raw:
        assert sorted(raw.files) == ['cols', 'feat', 'meta', 'rows']
        assert raw['rows'].dtype == np.uint16 and raw['feat'].dtype == np.float64
        assert raw['meta'].tolist() == [1, 2, 3]
    assert ImageFeatures.load(DataLocation('filesystem', str(path))) == feats


def test_coordinates_beyond_uint16_round_trip():
    feats = ImageFeatures.from_arrays([70000, 5], [3, 123456], np.ones((2, 4)))
    loc = DataLocation('memory', 'big.fv')
    feats.store(loc)
    back = ImageFeatures.load(loc)
    assert back.rows.tolist() == [70000, 5] and back.cols.tolist() == [3, 123456]
    assert back[(70000, 3)].tolist() == [1, 1, 1, 1]


def test_legacy_json_features():
    loc = DataLocation('filesystem', str(FIXTURES / 'pyspacer' / 'legacy' / 'cnbeta.jpg.feats'))
    feats = ImageFeatures.load(loc)
    expected = json.loads((FIXTURES / 'pyspacer' / 'legacy' / 'cnbeta.expected.json').read_text())
    assert feats.valid_rowcol is False
    assert (feats.npoints, feats.feature_dim) == (expected['npoints'], expected['feature_dim'])
    with pytest.raises(RowColumnMissingError):
        feats.rows_for([(1, 1, 'a')])


def test_corrupt_feature_files():
    storage_factory('memory').store('bad.fv', BytesIO(b'PK\x03\x04garbage'))
    with pytest.raises(MessageError, match='bad.fv: corrupt feature file'):
        ImageFeatures.load(DataLocation('memory', 'bad.fv'))
    storage_factory('memory').store('txt.fv', BytesIO(b'hello'))
    with pytest.raises(MessageError, match='txt.fv: not a feature file'):
        ImageFeatures.load(DataLocation('memory', 'txt.fv'))


def test_labels_batches_match_features():
    feats = ImageFeatures.from_arrays([1, 2, 3], [1, 2, 3], np.arange(6.).reshape(3, 2))
    loc = DataLocation('memory', 'a.fv')
    feats.store(loc)
    labels = ImageLabels({loc: [(3, 3, 'x'), (1, 1, 'y')]})
    (x, y), = list(labels.load_data_in_batches(batch_size=10))
    assert np.array_equal(np.array(x), [[4, 5], [0, 1]]) and list(y) == ['x', 'y']
    bad = ImageLabels({loc: [(9, 9, 'x')]})
    with pytest.raises(RowColumnMismatchError, match=r'a.fv: .*\(9, 9\)'):
        bad.load_all_data()
    assert labels.label_count == 2 and labels.classes_set == {'x', 'y'}
    assert labels.filter_classes(['x'])[loc] == [(3, 3, 'x')]
