"""
What every extractor shares: pyspacer's serialized form, allow-listed
deserialization, no torch on import, hash-checked data files (remote ones
downloaded once into EXTRACTORS_CACHE_DIR), models kept warm by content.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from spacer import config
from spacer.data_classes import DataLocation
from spacer.exceptions import ClassPathError, HashMismatchError
from spacer.extractors import (
    DummyExtractor, EfficientNetExtractor, FeatureExtractor)
from spacer.extractors import warm
from spacer.extractors.data_files import WeightsFormatError
from spacer.storage import storage_factory


@pytest.fixture(autouse=True)
def _torch_engine(monkeypatch):
    """These tests are about files and caching: the quick-to-build engine."""
    monkeypatch.setattr(config, 'DEVICE', 'cpu')
    monkeypatch.setattr('spacer.extractors.efficientnet.engine_setting',
                        lambda: 'torch')


def small_image():
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))


# ---- serialization ------------------------------------------------------

def test_efficientnet_serializes_like_pyspacer():
    extractor = EfficientNetExtractor(
        data_locations={'weights': DataLocation('s3', 'w.pt', 'bucket')},
        data_hashes={'weights': 'ab' * 32})
    assert extractor.serialize() == {
        'class_path': 'spacer.extractors.efficientnet.EfficientNetExtractor',
        'data_locations': {'weights': {
            'storage_type': 's3', 'key': 'w.pt', 'bucket_name': 'bucket'}},
        'data_hashes': {'weights': 'ab' * 32},
    }
    again = FeatureExtractor.deserialize(
        json.loads(json.dumps(extractor.serialize())))
    assert isinstance(again, EfficientNetExtractor) and again == extractor


def test_pyspacer_fixture_message_extractor_roundtrips():
    from tests.conftest import PYSPACER_FIXTURES
    data = json.loads((PYSPACER_FIXTURES / 'messages' /
                       'ExtractFeaturesMsg.json').read_text())
    extractor = FeatureExtractor.deserialize(data['extractor'])
    assert isinstance(extractor, EfficientNetExtractor)
    assert extractor.serialize() == data['extractor']


def test_dummy_serializes_with_feature_dim_and_pyspacer_path():
    extractor = DummyExtractor(feature_dim=64)
    data = extractor.serialize()
    assert data == {'class_path': 'spacer.extractors.base.DummyExtractor',
                    'data_locations': {}, 'data_hashes': {},
                    'feature_dim': 64}
    assert FeatureExtractor.deserialize(data) == extractor
    from spacer.extractors.base import DummyExtractor as FromBase
    assert FromBase is DummyExtractor


def test_dummy_features_have_the_right_shape():
    features, msg = DummyExtractor(feature_dim=16)(
        small_image(), [(0, 0), (59, 79)])
    assert features.feat.shape == (2, 16)
    assert list(features.rows) == [0, 59] and list(features.cols) == [0, 79]
    assert msg.extractor_loaded_remotely is False


@pytest.mark.parametrize('bad', [0, -3, 2.5, '64', True])
def test_dummy_rejects_bad_feature_dim(bad):
    with pytest.raises(ValueError, match='feature_dim'):
        DummyExtractor(feature_dim=bad)


def test_unknown_class_path_is_refused():
    with pytest.raises(ClassPathError):
        FeatureExtractor.deserialize({
            'class_path': 'os.system', 'data_locations': {}})


def test_non_extractor_class_path_is_refused():
    with pytest.raises(ClassPathError):
        FeatureExtractor.deserialize({
            'class_path': 'spacer.train_classifier.MiniBatchTrainer',
            'data_locations': {}})


def test_missing_data_location_key():
    with pytest.raises(ValueError, match='weights must be present'):
        EfficientNetExtractor(data_locations={})


def test_import_and_serialization_do_not_import_torch():
    code = '''
import json, sys
import spacer.extractors
from spacer.extractors import FeatureExtractor, EfficientNetExtractor
from spacer.extractors import VGG16CaffeExtractor, DummyExtractor
from spacer.data_classes import DataLocation
e = EfficientNetExtractor(data_locations={'weights': DataLocation('memory', 'w')})
d = FeatureExtractor.deserialize(json.loads(json.dumps(e.serialize())))
assert d == e
v = FeatureExtractor.deserialize({
    'class_path': 'spacer.extractors.vgg16.VGG16CaffeExtractor',
    'data_locations': {
        'definition': {'storage_type': 'memory', 'key': 'd', 'bucket_name': None},
        'weights': {'storage_type': 'memory', 'key': 'w', 'bucket_name': None}}})
DummyExtractor(feature_dim=8)(None, [(0, 0)])
import spacer.extract_inputs, spacer.tasks
print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))
'''
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == '[]'


# ---- data files and hashes ----------------------------------------------

def test_wrong_hash_on_local_file(b0_weights_file):
    path, _ = b0_weights_file
    extractor = EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(path))},
        data_hashes={'weights': '0' * 64})
    with pytest.raises(HashMismatchError, match="'weights'"):
        extractor(small_image(), [(1, 1)])


def test_right_hash_loads(b0_weights_file):
    path, digest = b0_weights_file
    extractor = EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(path))},
        data_hashes={'weights': digest})
    features, msg = extractor(small_image(), [(1, 1), (30, 40)])
    assert features.feat.shape == (2, 1280)
    assert msg.extractor_loaded_remotely is False


def test_load_datastream_checks_memory_blob():
    storage_factory('memory').store('blob', BytesIO(b'abc'))
    extractor = EfficientNetExtractor(
        data_locations={'weights': DataLocation('memory', 'blob')},
        data_hashes={'weights': hashlib.sha256(b'abc').hexdigest()})
    stream, remote = extractor.load_datastream('weights')
    assert stream.read() == b'abc' and remote is False
    extractor.data_hashes['weights'] = hashlib.sha256(b'abd').hexdigest()
    with pytest.raises(HashMismatchError):
        extractor.load_datastream('weights')


def _s3_weights(bucket, b0_weights_file, key='models/efficientnet_b0.pt'):
    path, digest = b0_weights_file
    storage_factory('s3', bucket).store(key, BytesIO(path.read_bytes()))
    return DataLocation('s3', key, bucket), digest


def test_remote_weights_download_once(s3_settings, tmp_cache_dir,
                                      b0_weights_file):
    loc, digest = _s3_weights(s3_settings, b0_weights_file)
    extractor = EfficientNetExtractor(data_locations={'weights': loc},
                                      data_hashes={'weights': digest})
    _, first = extractor(small_image(), [(5, 5)])
    assert first.extractor_loaded_remotely is True
    cached = list(tmp_cache_dir.iterdir())
    assert len(cached) == 1
    assert hashlib.sha256(cached[0].read_bytes()).hexdigest() == digest
    warm.clear()  # even a cold model reads the cached copy
    _, second = extractor(small_image(), [(5, 5)])
    assert second.extractor_loaded_remotely is False


def test_remote_wrong_hash_removes_cached_copy(s3_settings, tmp_cache_dir,
                                               b0_weights_file):
    loc, _ = _s3_weights(s3_settings, b0_weights_file)
    extractor = EfficientNetExtractor(data_locations={'weights': loc},
                                      data_hashes={'weights': 'f' * 64})
    for _ in range(2):  # and again: downloaded afresh, still refused
        with pytest.raises(HashMismatchError):
            extractor(small_image(), [(5, 5)])
        assert list(tmp_cache_dir.iterdir()) == []


# ---- weights files of the wrong kind ------------------------------------

def _extractor_for_bytes(tmp_path, data: bytes):
    path = tmp_path / 'weights.pt'
    path.write_bytes(data)
    return EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(path))})


def _torch_bytes(obj) -> bytes:
    import torch
    stream = BytesIO()
    torch.save(obj, stream)
    return stream.getvalue()


def test_weights_with_wrong_keys(tmp_path, b0_state_dict):
    renamed = {'backbone.' + k: v for k, v in b0_state_dict.items()}
    extractor = _extractor_for_bytes(tmp_path, _torch_bytes({'net': renamed}))
    with pytest.raises(WeightsFormatError, match='missing keys'):
        extractor(small_image(), [(1, 1)])


def test_weights_with_wrong_shapes(tmp_path, b0_state_dict):
    import torch
    state = dict(b0_state_dict)
    state['_fc.weight'] = torch.zeros(1000, 1280)
    state['_fc.bias'] = torch.zeros(1000)
    extractor = _extractor_for_bytes(tmp_path, _torch_bytes({'net': state}))
    with pytest.raises(WeightsFormatError, match='wrong shape'):
        extractor(small_image(), [(1, 1)])


def test_weights_without_net_entry(tmp_path, b0_state_dict):
    extractor = _extractor_for_bytes(
        tmp_path, _torch_bytes(dict(b0_state_dict)))
    with pytest.raises(WeightsFormatError, match="'net'"):
        extractor(small_image(), [(1, 1)])


def test_weights_file_that_is_not_torch(tmp_path):
    extractor = _extractor_for_bytes(tmp_path, b'not a checkpoint' * 10)
    with pytest.raises(WeightsFormatError, match='torch checkpoint'):
        extractor(small_image(), [(1, 1)])


def test_weights_pickle_with_code_is_refused(tmp_path):
    import torch

    class Evil:
        def __reduce__(self):
            return (print, ('pwned',))
    stream = BytesIO()
    torch.save({'net': Evil()}, stream)
    extractor = _extractor_for_bytes(tmp_path, stream.getvalue())
    with pytest.raises(WeightsFormatError):
        extractor(small_image(), [(1, 1)])


def test_state_dict_without_module_prefix_loads(tmp_path, b0_state_dict):
    extractor = _extractor_for_bytes(
        tmp_path, _torch_bytes({'net': b0_state_dict}))
    features, _ = extractor(small_image(), [(1, 1)])
    assert features.feat.shape == (1, 1280)


# ---- warm models ---------------------------------------------------------

def test_model_is_built_once_per_content(tmp_path, b0_weights_file,
                                         monkeypatch):
    path, digest = b0_weights_file
    copy = tmp_path / 'another_name.pt'
    copy.write_bytes(path.read_bytes())
    builds = []
    original = EfficientNetExtractor.build_model

    def counting(self, device):
        builds.append(self.data_locations['weights'].key)
        return original(self, device)
    monkeypatch.setattr(EfficientNetExtractor, 'build_model', counting)

    for weights in (path, copy, path):
        extractor = EfficientNetExtractor(data_locations={
            'weights': DataLocation('filesystem', str(weights))})
        extractor(small_image(), [(2, 2)])
    assert builds == [str(path)]  # same bytes, one build

    # New content under the same name: a new model.
    import torch
    state = torch.load(copy, weights_only=True)
    state['net']['module._bn1.bias'] += 1.0
    torch.save(state, copy)
    extractor = EfficientNetExtractor(data_locations={
        'weights': DataLocation('filesystem', str(copy))})
    extractor(small_image(), [(2, 2)])
    assert builds == [str(path), str(copy)]


def test_warm_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(config, 'EXTRACTOR_CACHE_SIZE', 2)
    for key in 'abc':
        warm.get_or_build(key, lambda: object())
    assert not warm.is_warm('a') and warm.is_warm('b') and warm.is_warm('c')


@pytest.mark.parametrize('setting,expected', [('cpu', 'cpu'),
                                              ('CPU', 'cpu')])
def test_device_setting(setting, expected):
    assert warm.resolve_device(setting) == expected


def test_auto_device_matches_cuda_availability():
    import torch
    expected = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert warm.resolve_device('auto') == expected


def test_bad_device_setting():
    with pytest.raises(ValueError, match='DEVICE'):
        warm.resolve_device('tpu')


def test_one_ahead_keeps_order_and_raises():
    from spacer.extractors.base import _one_ahead
    assert list(_one_ahead(iter(range(7)))) == list(range(7))
    assert list(_one_ahead(iter([]))) == []

    def failing():
        yield 1
        raise OSError('disk gone')
    with pytest.raises(OSError, match='disk gone'):
        list(_one_ahead(failing()))


def test_cuda_setting_without_gpu_is_an_error():
    import torch
    if torch.cuda.is_available():
        pytest.skip('a GPU is present')
    with pytest.raises(ValueError, match='no CUDA device'):
        warm.resolve_device('cuda')


def test_checkpoint_from_before_num_batches_tracked_loads(tmp_path,
                                                          b0_state_dict):
    old_style = {k: v for k, v in b0_state_dict.items()
                 if not k.endswith('num_batches_tracked')}
    extractor = _extractor_for_bytes(tmp_path,
                                     _torch_bytes({'net': old_style}))
    features, _ = extractor(small_image(), [(1, 1)])
    assert features.feat.shape == (1, 1280)
