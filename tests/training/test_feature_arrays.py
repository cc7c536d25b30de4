"""The one-read data path yields pyspacer's batches, with bounded memory."""
from __future__ import annotations

import numpy as np
import pytest

from spacer.data_classes import DataLocation
from spacer.training.feature_arrays import (
    iter_labelled_chunks, load_labelled_arrays)


@pytest.mark.parametrize('seed, batch_size', [(0, 200), (3, 333), (None, 10000)])
def test_batches_equal_pyspacers_per_epoch_batches(small_source, seed,
                                                   batch_size):
    """Same rows, labels and batch boundaries as ImageLabels'
    load_data_in_batches (pyspacer's per-epoch reading)."""
    expected = list(small_source.load_data_in_batches(
        batch_size=batch_size, random_seed=seed))
    with load_labelled_arrays(small_source) as arrays:
        got = list(arrays.batches(seed, batch_size))

    assert [len(y) for _, y in got] == [len(list(y)) for _, y in expected]
    for (x, y), (ex, ey) in zip(got, expected):
        assert y.tolist() == list(ey)
        np.testing.assert_allclose(x, np.array(list(ex)), rtol=1e-6)


def test_memory_map_above_the_limit(small_source, tmp_path):
    in_memory = load_labelled_arrays(small_source)
    with load_labelled_arrays(small_source, storage_dir=str(tmp_path),
                              memory_limit=0) as mapped:
        assert isinstance(mapped.features, np.memmap)
        assert len(list(tmp_path.iterdir())) == 1
        for (x1, y1), (x2, y2) in zip(in_memory.batches(5, 128),
                                      mapped.batches(5, 128)):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)
    assert list(tmp_path.iterdir()) == []
    assert in_memory.features.dtype == np.float32


def test_chunks_cover_the_set_in_key_order(small_source):
    xs, ys = [], []
    for x, y in iter_labelled_chunks(small_source, chunk_points=120):
        assert len(x) == len(y)
        xs.append(x)
        ys.extend(y)
    expected_x, expected_y = small_source.load_all_data()
    assert ys == list(expected_y)
    np.testing.assert_array_equal(np.concatenate(xs), np.array(expected_x))


def test_parallel_loading_keeps_order_for_many_files(tmp_path):
    from spacer.data_classes import ImageFeatures, ImageLabels
    labels = ImageLabels()
    for i in range(40):
        loc = DataLocation('filesystem', str(tmp_path / f'{i}.featurevector'))
        ImageFeatures.from_arrays([0, 1], [0, 1],
                                  np.full((2, 3), float(i))).store(loc)
        labels.add_image(loc, [(1, 1, i % 2)])
    with load_labelled_arrays(labels) as arrays:
        assert arrays.features[:, 0].tolist() == list(range(40))


def test_remote_features_load_in_parallel_once(s3_settings, small_source):
    """Feature files on S3 (moto's server): read once per task, on many
    threads, into the same arrays as from local files."""
    from spacer.data_classes import ImageFeatures, ImageLabels
    from spacer.training.feature_arrays import REMOTE_WORKERS, _workers

    remote = ImageLabels()
    for loc in list(small_source.keys())[:12]:
        s3_loc = DataLocation('s3', f'features/{loc.filename}', s3_settings)
        ImageFeatures.load(loc).store(s3_loc)
        remote.add_image(s3_loc, small_source[loc])
    local = ImageLabels({loc: small_source[loc]
                         for loc in list(small_source.keys())[:12]})
    assert _workers(remote) == REMOTE_WORKERS

    with load_labelled_arrays(remote) as got, \
            load_labelled_arrays(local) as expected:
        np.testing.assert_array_equal(got.features, expected.features)
        np.testing.assert_array_equal(got.labels, expected.labels)


def test_legacy_features_refused_alike_by_both_readers():
    """pyspacer's per-epoch reader and the one-read path give the same error,
    naming the file, for features without rows/cols."""
    from spacer.data_classes import ImageLabels
    from spacer.exceptions import RowColumnMissingError
    from tests.conftest import FIXTURES
    loc = DataLocation('filesystem', str(FIXTURES / 'pyspacer' / 'legacy' / 'cnbeta.jpg.feats'))
    labels = ImageLabels({loc: [(1, 1, 'a')]})
    expected = f"{loc.key}: Features without rowcols are no longer supported for training."
    with pytest.raises(RowColumnMissingError) as per_epoch:
        list(labels.load_data_in_batches())
    with pytest.raises(RowColumnMissingError) as one_read:
        load_labelled_arrays(labels)
    assert str(per_epoch.value) == str(one_read.value) == expected
