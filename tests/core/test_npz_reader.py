"""The fast npz reader gives what numpy.load gives, and refuses what it refuses."""
import zipfile
from io import BytesIO

import numpy as np
import pytest

from spacer import npz_reader
from spacer.data_classes import DataLocation, ImageFeatures
from spacer.exceptions import MessageError
from tests.conftest import PYSPACER_FIXTURES


def _npz(compressed=True, **arrays) -> bytes:
    out = BytesIO()
    (np.savez_compressed if compressed else np.savez)(out, **arrays)
    return out.getvalue()


@pytest.mark.parametrize('compressed', [True, False])
def test_same_arrays_as_numpy(compressed):
    arrays = {'meta': np.array([1, 3, 4]), 'rows': np.array([1, 2, 70000], np.uint32),
              'feat': np.asfortranarray(np.random.RandomState(0).randn(3, 4))}
    raw = _npz(compressed, **arrays)
    ours = npz_reader.read_npz(raw, tuple(arrays))
    for name, array in arrays.items():
        assert ours[name].dtype == array.dtype and np.array_equal(ours[name], array)
    ours['feat'][0, 0] = 5.0  # writable, like numpy.load's arrays


def test_pyspacer_files_read_alike():
    for path in sorted((PYSPACER_FIXTURES / 'features').iterdir())[:5]:
        raw = path.read_bytes()
        ours = npz_reader.read_npz(raw, ('meta', 'rows', 'cols', 'feat'))
        with np.load(path) as theirs:
            for name in ours:
                assert np.array_equal(ours[name], theirs[name])


def test_corrupt_member_is_a_clear_error():
    raw = bytearray(ImageFeatures.example().to_bytes())
    info = zipfile.ZipFile(BytesIO(bytes(raw))).getinfo('feat.npy')
    middle = info.header_offset + 60 + info.compress_size // 2
    raw[middle] ^= 0xFF
    with pytest.raises(MessageError, match='x.fv: corrupt feature file'):
        ImageFeatures.from_bytes(bytes(raw), 'x.fv')


def test_object_arrays_are_refused():
    raw = _npz(meta=np.array([1, 1, 1]), rows=np.array([1]), cols=np.array([1]),
               feat=np.array([[object()]], dtype=object))
    from spacer.storage import storage_factory
    storage_factory('memory').store('obj.fv', BytesIO(raw))
    with pytest.raises(MessageError, match='obj.fv: corrupt feature file'):
        ImageFeatures.load(DataLocation('memory', 'obj.fv'))
