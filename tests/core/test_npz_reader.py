"""The fast npz reader gives what numpy.load gives, and refuses what it refuses."""
import gc
import sys
import threading
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


class _Cycle:
    """Garbage whose finalizer runs Python code: a collection inside numpy's
    header parse can then switch threads mid-parse, as in a busy worker."""

    def __init__(self):
        self.itself = self

    def __del__(self):
        sum(range(50))


def test_threads_parse_headers_at_once():
    """Four classify threads reading feature files of new shapes at once.
    Without the lock, CPython 3.11 fails one of them within a few hundred
    parses ("AST constructor recursion depth mismatch")."""
    old_interval, old_threshold = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(1e-6)
    gc.set_threshold(50, 1, 1)
    errors = []

    def parse_many(thread: int):
        for n in range(1, 3001):
            _Cycle()
            shape = (thread, n)
            header = BytesIO()
            np.lib.format.write_array_header_1_0(
                header, {'descr': '<f8', 'fortran_order': False, 'shape': shape})
            try:
                assert npz_reader._parse_header(header.getvalue())[0] == shape
            except BaseException as e:  # noqa: BLE001 - a thread's failure, reported below
                errors.append(e)
                return

    try:
        threads = [threading.Thread(target=parse_many, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(old_interval)
        gc.set_threshold(*old_threshold)
    assert errors == []
