"""
pyspacer 0.14's EfficientNet and TorchExtractor names behave as pyspacer's:
the recorder's ``observe()`` run on ours gives what it recorded from the
real package (tests/fixtures/pyspacer/0.14.0/efficientnet_names.json);
TorchExtractor's untrained_instance / untrained_model / load_weights work,
for EfficientNet and for a pyspacer-style subclass; and, where the side
environment exists, weights made by pyspacer give pyspacer's features here.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

from spacer.data_classes import DataLocation
from spacer.extractors.data_files import WeightsFormatError
from spacer.extractors.efficientnet import EfficientNetExtractor
from spacer.extractors.torch_extractors import TorchExtractor, transformation

FIXTURES = Path(__file__).resolve().parents[1] / 'fixtures' / 'pyspacer'
RECORDER_PATH = FIXTURES / 'record_efficientnet_names.py'
RECORDED = json.loads(
    (FIXTURES / '0.14.0' / 'efficientnet_names.json').read_text())
PYSPACER_PY = Path(__file__).resolve().parents[2] / '.venv-pyspacer' / \
    'bin' / 'python'

# Float tolerance per recorded entry (default: exact up to float rounding).
TOLERANCE = {'calibrated_b0_features': 1e-4, 'calibrated_b0_logits_head': 1e-4,
             'mbconv': 1e-4}
# pyspacer's encoder reads TensorFlow's ``strides``, which its own BlockArgs
# lacks, so encode(decode(...)) raises there; ours round-trips.
KNOWN_DIFFERENCES = {('utils', 'encode_block_args')}


def _load_recorder():
    spec = importlib.util.spec_from_file_location(
        'record_efficientnet_names', RECORDER_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


recorder = _load_recorder()


@pytest.fixture(scope='module')
def ours() -> dict:
    return recorder.observe(recorder.spacer_api())


def assert_same(theirs, mine, tolerance: float, where: str) -> None:
    if isinstance(theirs, float) or isinstance(mine, float):
        assert mine == pytest.approx(theirs, abs=tolerance, rel=1e-6), where
    elif isinstance(theirs, dict):
        assert isinstance(mine, dict) and sorted(mine) == sorted(theirs), where
        for key in theirs:
            assert_same(theirs[key], mine[key], tolerance, f'{where}.{key}')
    elif isinstance(theirs, list):
        assert isinstance(mine, (list, tuple)), where
        assert len(mine) == len(theirs), where
        for i, (t, m) in enumerate(zip(theirs, mine)):
            assert_same(t, m, tolerance, f'{where}[{i}]')
    else:
        assert mine == theirs, where


RECORDED_ENTRIES = [(group, name) for group, entries in RECORDED.items()
                    if group != '_about' for name in entries
                    if (group, name) not in KNOWN_DIFFERENCES]


@pytest.mark.parametrize('group,name', RECORDED_ENTRIES,
                         ids=[f'{g}.{n}' for g, n in RECORDED_ENTRIES])
def test_same_as_recorded_pyspacer(ours, group, name):
    """JSON round trip first: tuples become lists, as in the recording."""
    mine = json.loads(json.dumps(ours[group][name]))
    assert_same(RECORDED[group][name], mine, TOLERANCE.get(name, 1e-6),
                f'{group}.{name}')


def test_block_strings_round_trip_where_pyspacer_raises(ours):
    assert RECORDED['utils']['encode_block_args']['error'] == 'AttributeError'
    assert ours['utils']['encode_block_args'] == \
        RECORDED['utils']['encode_tf_blocks']


def test_network_is_the_one_our_extractor_runs():
    """CoralNet's B0 is the scaled family's b0: same keys and shapes, and
    the features it computes are EfficientNet.extract_features."""
    import torch

    from spacer.extractors.efficientnet import EfficientNet
    from spacer.extractors.efficientnet_net import EfficientNetB0
    b0 = EfficientNetB0()
    assert isinstance(b0, EfficientNet)
    reference = EfficientNet.from_name('efficientnet-b0',
                                       {'num_classes': 1275})
    assert [[k, list(v.shape)] for k, v in b0.state_dict().items()] == \
        RECORDED['network']['b0_1275_keys']
    reference.load_state_dict(b0.state_dict())
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(b0.eval()(x),
                                   reference.eval().extract_features(x))


def test_transformation_is_totensor_without_torchvision():
    import torch
    image = np.arange(24, dtype=np.uint8).reshape(2, 4, 3) * 10
    tensor = transformation()(image)
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 2, 4)
    np.testing.assert_array_equal(tensor.numpy(),
                                  image.transpose(2, 0, 1) / np.float32(255))
    with pytest.raises(TypeError):
        transformation()([[1, 2]])


def _state_equal(a, b) -> bool:
    import torch
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_untrained_instance_holds_untrained_model_weights():
    import torch
    torch.manual_seed(0)
    extractor = EfficientNetExtractor.untrained_instance('names-test-weights')
    assert extractor.data_locations['weights'] == \
        DataLocation('memory', 'names-test-weights')
    torch.manual_seed(0)
    expected = EfficientNetExtractor.untrained_model().state_dict()
    stream, remote = extractor.load_datastream('weights')
    model = EfficientNetExtractor.load_weights(stream)
    assert remote is False
    assert _state_equal(model.state_dict(), expected)
    assert not any(p.requires_grad for p in model.parameters())
    patch = np.random.default_rng(0).integers(0, 256, (224, 224, 3),
                                              dtype=np.uint8)
    feats, _ = extractor.patches_to_features([patch])
    assert np.asarray(feats).shape == (1, 1280)


def test_load_weights_strips_dataparallel_prefix_and_checks():
    import torch
    model = EfficientNetExtractor.untrained_model()
    stream = BytesIO()
    torch.save({'net': {'module.' + k: v
                        for k, v in model.state_dict().items()}}, stream)
    stream.seek(0)
    loaded = EfficientNetExtractor.load_weights(stream)
    assert _state_equal(loaded.state_dict(), model.state_dict())
    with pytest.raises(WeightsFormatError, match='torch checkpoint'):
        EfficientNetExtractor.load_weights(BytesIO(b'not a checkpoint'))
    stream = BytesIO()
    torch.save({'net': {'x.weight': torch.zeros(1)}}, stream)
    stream.seek(0)
    with pytest.raises(WeightsFormatError, match='missing keys'):
        EfficientNetExtractor.load_weights(stream)


class TinyNet:
    """Built lazily (torch): a pyspacer-style network, extract_features
    giving one mean per channel of a 1x1 convolution."""

    @staticmethod
    def build():
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = torch.nn.Conv2d(3, 4, 1)

            def extract_features(self, x):
                return self.conv(x).mean((2, 3))
        return Net()


class TinyExtractor(TorchExtractor):
    """What a pyspacer user writes: untrained_model and feature_dim."""

    @property
    def feature_dim(self) -> int:
        return 4

    @staticmethod
    def untrained_model():
        return TinyNet.build()


def test_pyspacer_style_subclass_extracts():
    import torch
    from PIL import Image
    torch.manual_seed(1)
    extractor = TinyExtractor.untrained_instance('tiny-weights')
    model = TinyExtractor.load_weights(extractor.load_datastream('weights')[0])
    rng = np.random.default_rng(1)
    patches = rng.integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = model.extract_features(
            torch.stack([transformation()(p) for p in patches])).numpy()
    feats, _ = extractor.patches_to_features(list(patches))
    np.testing.assert_allclose(feats, expected, atol=1e-6)
    image = Image.fromarray(rng.integers(0, 256, (300, 260, 3),
                                         dtype=np.uint8))
    features, _ = extractor(image, [(10, 10), (150, 130)])
    assert features.feat.shape == (2, 4)


PYSPACER_RUN = '''
import json, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
import record_efficientnet_names as recorder
import spacer
assert '/.venv-pyspacer/' in spacer.__file__, spacer.__file__
from spacer.data_classes import DataLocation
weights, patches, out = sys.argv[2:5]
net = recorder.calibrated_b0(recorder.spacer_api())
torch.save({'net': {'module.' + k: v for k, v in net.state_dict().items()}},
           weights)
api = recorder.spacer_api()
extractor = api.EfficientNetExtractor(
    data_locations={'weights': DataLocation('filesystem', weights)})
feats, _ = extractor.patches_to_features(list(np.load(patches)))
np.save(out, np.array(feats, dtype=np.float32))
'''


@pytest.mark.skipif(not PYSPACER_PY.exists(),
                    reason='no .venv-pyspacer side environment')
def test_pyspacer_made_weights_give_pyspacer_features(tmp_path, monkeypatch):
    """Seeded, BatchNorm-calibrated B0 weights saved by pyspacer; its own
    patches_to_features against ours (fast engines and load_weights)."""
    import torch

    from spacer import config
    monkeypatch.setattr(config, 'DEVICE', 'cpu')
    weights, patches_file, out = (tmp_path / 'b0.pt', tmp_path / 'p.npy',
                                  tmp_path / 'f.npy')
    patches = np.random.default_rng(3).integers(0, 256, (4, 224, 224, 3),
                                                dtype=np.uint8)
    np.save(patches_file, patches)
    subprocess.run([str(PYSPACER_PY), '-P', '-c', PYSPACER_RUN,
                    str(FIXTURES), str(weights), str(patches_file), str(out)],
                   cwd=tmp_path, check=True, capture_output=True, timeout=600)
    theirs = np.load(out)
    assert 0.05 < np.abs(theirs).mean() < 10

    extractor = EfficientNetExtractor(
        data_locations={'weights': DataLocation('filesystem', str(weights))})
    feats, _ = extractor.patches_to_features(list(patches))
    assert np.abs(np.asarray(feats) - theirs).max() <= 1e-4
    model = EfficientNetExtractor.load_weights(
        extractor.load_datastream('weights')[0]).eval()
    with torch.no_grad():
        direct = model.extract_features(
            torch.stack([transformation()(p) for p in patches])).numpy()
    assert np.abs(direct - theirs).max() <= 1e-4
