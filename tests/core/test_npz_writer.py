"""Feature files written by libdeflate are the zip numpy writes: numpy,
zipfile and our reader read them back exactly, and without libdeflate
numpy writes them."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from spacer import npz_writer
from spacer.data_classes import DataLocation, ImageFeatures


def _arrays(n=200):
    rng = np.random.default_rng(n)
    return dict(meta=np.array([True, n, 1280]),
                rows=rng.integers(0, 3000, n).astype(np.uint16),
                cols=rng.integers(0, 4000, n).astype(np.uint16),
                feat=rng.standard_normal((n, 1280)).astype(np.float32).astype(float))


@pytest.mark.parametrize('n', [1, 30, 200])
def test_numpy_and_zipfile_read_it_back_exactly(n):
    arrays = _arrays(n)
    data = npz_writer.npz_bytes(**arrays)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == [f'{k}.npy' for k in arrays]
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
    loaded = np.load(io.BytesIO(data), allow_pickle=False)
    for key, value in arrays.items():
        assert loaded[key].dtype == value.dtype
        assert np.array_equal(loaded[key], value)


def test_same_arrays_same_bytes_and_smaller_than_numpys():
    arrays = _arrays()
    numpys = io.BytesIO()
    np.savez_compressed(numpys, **arrays)
    ours = npz_writer.npz_bytes(**arrays)
    assert ours == npz_writer.npz_bytes(**arrays)
    assert len(ours) <= len(numpys.getvalue())


def test_feature_files_round_trip_through_our_reader(tmp_path):
    features = ImageFeatures.from_arrays(
        np.array([0, 70000]), np.array([5, 6]),
        np.random.default_rng(0).standard_normal((2, 1280)), valid_rowcol=True)
    path = tmp_path / 'f.featurevector'
    path.write_bytes(features.to_bytes())
    again = ImageFeatures.load(DataLocation('filesystem', str(path)))
    assert np.array_equal(again.feat, features.feat)
    assert [(p.row, p.col) for p in again.point_features] == [(0, 5), (70000, 6)]


def test_without_libdeflate_numpy_writes_it(monkeypatch):
    monkeypatch.setattr(npz_writer, '_libdeflate', None)
    arrays = _arrays(3)
    loaded = np.load(io.BytesIO(npz_writer.npz_bytes(**arrays)))
    assert np.array_equal(loaded['feat'], arrays['feat'])
