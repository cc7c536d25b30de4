"""The one list of spacer's process-wide state: complete, bounded, clearable."""
from __future__ import annotations

from pathlib import Path

from spacer import process_state
from spacer.extractors import data_files

SPACER = Path(process_state.__file__).parent


def test_no_unbounded_lru_cache():
    for path in SPACER.rglob('*.py'):
        assert 'maxsize=None' not in path.read_text(), path


def test_the_file_digest_memo_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(data_files, 'DIGEST_MEMO_SIZE', 3)
    data_files.clear_digest_memo()
    paths = []
    for i in range(5):
        path = tmp_path / f'photo{i}.jpg'
        path.write_bytes(bytes([i]) * 10)
        paths.append(path)
        data_files.file_sha256(path)
    assert len(data_files._digest_memo) == 3
    # The most recent stay; a hit keeps its entry.
    assert data_files.file_sha256(paths[-1]) == data_files.file_sha256(paths[-1])
    assert len(data_files._digest_memo) == 3


def test_clear_all_empties_the_caches(tmp_path):
    path = tmp_path / 'w.bin'
    path.write_bytes(b'weights')
    data_files.file_sha256(path)
    assert data_files._digest_memo
    process_state.clear_all()
    assert not data_files._digest_memo
