"""FILESYSTEM_ROOTS: filesystem locations confined to the folders it names."""
from __future__ import annotations

import os
from io import BytesIO

import pytest

from spacer import config
from spacer.data_classes import DataLocation, ImageFeatures
from spacer.exceptions import ConfigError, SpacerError
from spacer.storage import FileSystemStorage, no_follow
from spacer.storage.confinement import PathOutsideRootsError, confine, parse_roots
from spacer.storage.filesystem import check_regular_file, read_regular_file, write_atomically


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """tmp_path/inside is the only root; tmp_path/outside holds a secret."""
    inside, outside = tmp_path / 'inside', tmp_path / 'outside'
    inside.mkdir()
    outside.mkdir()
    (outside / 'secret.txt').write_bytes(b'secret')
    monkeypatch.setattr(config, 'FILESYSTEM_ROOTS', str(inside))
    monkeypatch.setattr(config, 'EXTRACTORS_CACHE_DIR', None)
    return inside, outside


def snapshot(folder) -> dict:
    return {p: (p.read_bytes() if p.is_file() and not p.is_symlink() else os.readlink(p)
                if p.is_symlink() else None)
            for p in sorted(folder.rglob('*'))}


def test_unset_roots_refuse_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(config, 'FILESYSTEM_ROOTS', None)
    assert confine('/etc/hostname') == '/etc/hostname'
    FileSystemStorage().store(str(tmp_path / 'x'), BytesIO(b'1'))


def test_inside_paths_work(roots):
    inside, _ = roots
    storage = FileSystemStorage()
    storage.store(str(inside / 'sub' / 'a.bin'), BytesIO(b'data'))
    assert storage.load(str(inside / 'sub' / 'a.bin')).read() == b'data'
    assert storage.exists(str(inside / 'sub' / 'a.bin'))
    storage.delete(str(inside / 'sub' / 'a.bin'))
    assert confine(str(inside)) == str(inside)  # the root itself


@pytest.mark.parametrize('action', ['load', 'store', 'delete', 'exists'])
def test_absolute_path_outside_is_refused_naming_the_setting(roots, action):
    _, outside = roots
    before = snapshot(outside)
    storage = FileSystemStorage()
    call = {'load': lambda p: storage.load(p), 'store': lambda p: storage.store(p, BytesIO(b'x')),
            'delete': storage.delete, 'exists': storage.exists}[action]
    for path in (outside / 'secret.txt', outside / 'new.bin', outside / 'new' / 'dir' / 'f'):
        with pytest.raises(PathOutsideRootsError, match='FILESYSTEM_ROOTS'):
            call(str(path))
    assert snapshot(outside) == before


def test_dotdot_escape_is_refused(roots, monkeypatch):
    inside, outside = roots
    monkeypatch.chdir(inside)
    before = snapshot(outside)
    for path in ('../outside/pwned', str(inside / '..' / 'outside' / 'secret.txt'),
                 str(inside / 'nope' / '..' / '..' / 'outside' / 'pwned')):
        with pytest.raises(PathOutsideRootsError, match='FILESYSTEM_ROOTS'):
            FileSystemStorage().store(path, BytesIO(b'x'))
        with pytest.raises(PathOutsideRootsError):
            read_regular_file(path)
    assert snapshot(outside) == before
    # '..' that stays inside is fine
    (inside / 'a').mkdir()
    write_atomically(str(inside / 'a' / '..' / 'b.bin'), b'ok')
    assert (inside / 'b.bin').read_bytes() == b'ok'


def test_symlinked_folder_pointing_outside_is_refused(roots):
    inside, outside = roots
    (inside / 'link').symlink_to(outside, target_is_directory=True)
    before = snapshot(outside)
    with pytest.raises(PathOutsideRootsError):
        FileSystemStorage().store(str(inside / 'link' / 'pwned'), BytesIO(b'x'))
    with pytest.raises(PathOutsideRootsError):
        check_regular_file(str(inside / 'link' / 'secret.txt'))
    with pytest.raises(PathOutsideRootsError):
        write_atomically(str(inside / 'link' / 'deeper' / 'x'), b'x')
    assert snapshot(outside) == before


def test_symlink_at_the_destination_is_never_written_through(roots):
    inside, outside = roots
    (inside / 'out.bin').symlink_to(outside / 'secret.txt')
    before = snapshot(outside)
    with pytest.raises(PathOutsideRootsError):
        FileSystemStorage().store(str(inside / 'out.bin'), BytesIO(b'x'))
    with pytest.raises(PathOutsideRootsError):
        FileSystemStorage().load(str(inside / 'out.bin'))
    assert snapshot(outside) == before
    # A link that stays inside is replaced by the rename, not written through.
    (inside / 'target.bin').write_bytes(b'keep')
    (inside / 'inner.bin').symlink_to(inside / 'target.bin')
    FileSystemStorage().store(str(inside / 'inner.bin'), BytesIO(b'new'))
    assert not (inside / 'inner.bin').is_symlink()
    assert (inside / 'target.bin').read_bytes() == b'keep'


def test_a_root_that_is_a_symlink_works(tmp_path, monkeypatch):
    real = tmp_path / 'real'
    real.mkdir()
    (tmp_path / 'alias').symlink_to(real, target_is_directory=True)
    monkeypatch.setattr(config, 'FILESYSTEM_ROOTS', str(tmp_path / 'alias'))
    FileSystemStorage().store(str(tmp_path / 'alias' / 'f'), BytesIO(b'1'))
    FileSystemStorage().store(str(real / 'g'), BytesIO(b'1'))  # same folder, resolved


def test_several_roots_and_the_extractor_cache(roots, tmp_path, monkeypatch):
    inside, outside = roots
    second, cache = tmp_path / 'second', tmp_path / 'cache'
    second.mkdir()
    monkeypatch.setattr(config, 'FILESYSTEM_ROOTS', os.pathsep.join([str(inside), str(second)]))
    monkeypatch.setattr(config, 'EXTRACTORS_CACHE_DIR', str(cache))
    for folder in (inside, second, cache):
        write_atomically(str(folder / 'f'), b'1')
    with pytest.raises(PathOutsideRootsError):
        write_atomically(str(outside / 'f'), b'1')


def test_error_is_bad_input_and_a_permission_error(roots):
    _, outside = roots
    with pytest.raises(PathOutsideRootsError) as caught:
        ImageFeatures.load(DataLocation('filesystem', str(outside / 'secret.txt')))
    assert isinstance(caught.value, SpacerError) and isinstance(caught.value, PermissionError)
    assert 'secret' not in str(caught.value).replace('secret.txt', '')


def test_odd_paths_are_refused_not_crashed(roots):
    with pytest.raises(PathOutsideRootsError):
        confine('bad\0path')


def test_roots_must_be_absolute():
    assert parse_roots(None) == ()
    assert parse_roots(f'/a{os.pathsep}{os.pathsep}/b') == ('/a', '/b')
    with pytest.raises(ConfigError, match='FILESYSTEM_ROOTS'):
        parse_roots('relative/folder')


def test_train_feature_cache_dir_outside_is_refused(roots):
    from spacer.messages import TrainClassifierMsg
    from spacer.tasks import train_classifier
    _, outside = roots
    msg = TrainClassifierMsg.example()
    msg.feature_cache_dir = str(outside / 'cache')
    with pytest.raises(PathOutsideRootsError):
        train_classifier(msg)
    assert not (outside / 'cache').exists()


def test_a_task_checks_every_location_before_any_io(roots, monkeypatch):
    """One location outside: refused naming its field, nothing read first."""
    import spacer.tasks
    from spacer.extractors.dummy import DummyExtractor
    from spacer.messages import ExtractFeaturesMsg
    inside, outside = roots
    (inside / 'img.png').write_bytes(b'not read')
    monkeypatch.setattr(spacer.tasks, '_extract', lambda msg: pytest.fail('read the image'))
    msg = ExtractFeaturesMsg(
        job_token='t', extractor=DummyExtractor(feature_dim=4), rowcols=[(1, 1)],
        image_loc=DataLocation('filesystem', str(inside / 'img.png')),
        feature_loc=DataLocation('filesystem', str(outside / 'pwned')))
    with pytest.raises(PathOutsideRootsError, match='ExtractFeaturesMsg.feature_loc'):
        spacer.tasks.extract_features(msg)
    msg.feature_loc = DataLocation('filesystem', str(inside / 'f.npz'))
    msg.image_loc = DataLocation('filesystem', str(outside / 'secret.txt'))
    with pytest.raises(PathOutsideRootsError, match='ExtractFeaturesMsg.image_loc'):
        spacer.tasks.extract_features(msg)


# A local user who can write inside a root swaps a name on the path for a
# symlink after the path was checked and before it is used: the use goes
# through the checked (resolved) path without following any symlink, so it
# is refused and nothing outside is read or touched.

@pytest.fixture
def swap_after_check(roots, monkeypatch):
    """Arms a swap of inside/NAME for a symlink to outside/TARGET, done right
    after the next check of a path (between check and use)."""
    import spacer.storage.filesystem as filesystem
    inside, outside = roots
    check = filesystem.resolve_confined
    armed = {}

    def check_then_swap(path, action='read'):
        resolved = check(path, action)
        if armed:
            name, target = armed.pop('name'), armed.pop('target')
            if (inside / name).exists() or (inside / name).is_symlink():
                (inside / name).rename(inside / f'{name}.moved')
            (inside / name).symlink_to(outside / target)
        return resolved
    monkeypatch.setattr(filesystem, 'resolve_confined', check_then_swap)

    def arm(name: str, target: str = '') -> None:
        armed.update(name=name, target=target)
    return arm


@pytest.mark.skipif(not no_follow.AVAILABLE,
                    reason='needs O_PATH and the *at calls (Linux)')
class TestCheckThenUseRace:

    def test_a_folder_swapped_before_a_read(self, roots, swap_after_check):
        inside, outside = roots
        (inside / 'sub').mkdir()
        (inside / 'sub' / 'secret.txt').write_bytes(b'inside')
        swap_after_check('sub')
        with pytest.raises(PathOutsideRootsError, match='changed while in use.*FILESYSTEM_ROOTS'):
            FileSystemStorage().load(str(inside / 'sub' / 'secret.txt'))

    def test_the_file_swapped_before_a_read(self, roots, swap_after_check):
        inside, _ = roots
        (inside / 'data.bin').write_bytes(b'inside')
        swap_after_check('data.bin', 'secret.txt')
        with pytest.raises(PathOutsideRootsError, match='changed while in use'):
            read_regular_file(str(inside / 'data.bin'))

    def test_a_folder_swapped_before_a_write(self, roots, swap_after_check):
        inside, outside = roots
        (inside / 'sub').mkdir()
        before = snapshot(outside)
        swap_after_check('sub')
        with pytest.raises(PathOutsideRootsError, match='changed while in use'):
            FileSystemStorage().store(str(inside / 'sub' / 'secret.txt'), BytesIO(b'pwned'))
        assert snapshot(outside) == before

    def test_a_missing_folder_made_a_symlink_before_a_write(self, roots, swap_after_check):
        inside, outside = roots
        before = snapshot(outside)
        swap_after_check('new')
        with pytest.raises(PathOutsideRootsError, match='changed while in use'):
            FileSystemStorage().store(str(inside / 'new' / 'deeper' / 'f.bin'), BytesIO(b'x'))
        assert snapshot(outside) == before

    def test_a_folder_swapped_before_a_delete(self, roots, swap_after_check):
        inside, outside = roots
        (inside / 'sub').mkdir()
        (inside / 'sub' / 'secret.txt').write_bytes(b'inside')
        before = snapshot(outside)
        swap_after_check('sub')
        with pytest.raises(PathOutsideRootsError, match='changed while in use'):
            FileSystemStorage().delete(str(inside / 'sub' / 'secret.txt'))
        assert snapshot(outside) == before

    def test_without_a_swap_every_use_works_through_the_checked_path(self, roots):
        inside, _ = roots
        storage = FileSystemStorage()
        storage.store(str(inside / 'a' / 'b' / 'f.bin'), BytesIO(b'data'))
        assert storage.load(str(inside / 'a' / 'b' / 'f.bin')).read() == b'data'
        assert sorted(p.name for p in (inside / 'a' / 'b').iterdir()) == ['f.bin']  # no temporary
        storage.delete(str(inside / 'a' / 'b' / 'f.bin'))
        with pytest.raises(FileNotFoundError, match='f.bin'):
            storage.load(str(inside / 'a' / 'b' / 'f.bin'))
        with pytest.raises(FileNotFoundError):
            storage.delete(str(inside / 'a' / 'b' / 'f.bin'))
        with pytest.raises(IsADirectoryError):
            storage.load(str(inside / 'a'))
