"""
The PyTorch VGG16 built from Caffe files (spacer.extractors.vgg16_net)
against a plain numpy forward pass of the same layers.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spacer.extractors.caffe_proto import CaffeFormatError
from spacer.extractors.vgg16_net import (
    CaffeMaxPool2d, build_network, caffe_pooled_size, plan_network)
from tests.extractors.test_vgg16_files import (
    SMALL, VGGConfig, caffemodel_bytes, np_max_pool, np_vgg_forward,
    random_weights)


def _patches(n, hw, seed=1):
    return np.random.default_rng(seed).integers(
        0, 256, (n, hw, hw, 3), dtype=np.uint8)


def _torch_features(net, patches):
    with torch.inference_mode():
        return net(torch.from_numpy(patches)).numpy()


@pytest.mark.parametrize('style,legacy', [
    ('v1', True), ('v2', False), ('v2_input_shape', True)])
def test_fc7_matches_numpy_at_224(style, legacy):
    config = VGGConfig(style=style, **SMALL)
    weights = random_weights(config, seed=3)
    net = build_network(config.prototxt(),
                        caffemodel_bytes(config, weights, legacy=legacy))
    patches = _patches(3, 224)

    got = _torch_features(net, patches)
    want = np_vgg_forward(config, weights, patches)

    assert got.shape == (3, SMALL['fc']) and got.dtype == np.float32
    assert np.abs(got - want).max() <= 1e-4
    # fc7 as Caffe's blob holds it after the in-place relu7: non-negative,
    # and not trivially zero.
    assert got.min() >= 0 and (got > 0).mean() > 0.2 and want.std() > 0.1
    # The patches differ, so must their features.
    assert np.abs(got[0] - got[1]).max() > 1e-2


def test_odd_sizes_use_caffes_ceil_pooling():
    # 37 -> 19 -> 10 -> 5 -> 3 -> 2 with Caffe's ceil; floor would give 18.
    config = VGGConfig(input_hw=37, **SMALL)
    assert config.param_shapes()['fc6'][0] == (SMALL['fc'], 16 * 2 * 2)
    weights = random_weights(config, seed=4)
    net = build_network(config.prototxt(), caffemodel_bytes(config, weights))
    patches = _patches(2, 37)
    got = _torch_features(net, patches)
    want = np_vgg_forward(config, weights, patches)
    assert np.abs(got - want).max() <= 1e-4


@pytest.mark.parametrize('size,kernel,stride,pad', [
    (7, 2, 2, 0), (8, 2, 2, 0), (10, 3, 2, 1), (9, 3, 2, 1), (8, 3, 3, 1),
    (6, 2, 2, 1), (11, 3, 1, 1), (5, 5, 1, 2)])
def test_max_pool_matches_caffe_definition(size, kernel, stride, pad):
    x = np.random.default_rng(size + kernel).standard_normal((2, 3, size, size))
    out_hw = (caffe_pooled_size(size, kernel, pad, stride),) * 2
    pool = CaffeMaxPool2d((kernel,) * 2, (stride,) * 2, (pad,) * 2,
                          (size, size), out_hw)
    got = pool(torch.from_numpy(x)).numpy()
    want = np_max_pool(x, kernel, stride, pad)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_output_is_fc7_as_caffe_leaves_it():
    """With an out-of-place relu7, Caffe's fc7 blob keeps negative values;
    the net follows the definition rather than assuming a ReLU."""
    config = VGGConfig(**SMALL)
    text = config.prototxt().replace(
        'top: "fc7"\n  name: "relu7"', 'top: "fc7_relu"\n  name: "relu7"')
    text = text.replace('bottom: "fc7"\n  top: "fc7"\n  name: "drop7"',
                        'bottom: "fc7_relu"\n  top: "fc7_relu"\n'
                        '  name: "drop7"')
    weights = random_weights(config, seed=5)
    net = build_network(text, caffemodel_bytes(config, weights))
    patches = _patches(2, 224)
    got = _torch_features(net, patches)
    assert got.min() < 0
    # fc7 before ReLU: fc7's inner product on the numpy fc6.
    fc6 = np_vgg_forward(config, weights, patches, output_blob='fc6')
    w7, b7 = weights['fc7']
    np.testing.assert_allclose(got, fc6 @ w7.T.astype(np.float64) + b7,
                               atol=1e-4, rtol=0)


@pytest.mark.parametrize('style', ['v1', 'v2', 'v2_input_shape'])
def test_real_vgg16_definition_shapes(style):
    """The full-size VGG16 prototxt, without its 528 MB of weights."""
    plan = plan_network(VGGConfig(style=style).prototxt())
    by_name = {layer.name: layer for layer in plan.layers}
    assert plan.input_blob == 'data' and plan.input_shape == (3, 224, 224)
    assert plan.output_dim == 4096
    assert [l.name for l in plan.layers][-3:] == ['fc7', 'relu7', 'drop7']
    assert 'fc8' not in by_name and 'prob' not in by_name
    counts = {}
    for layer in plan.layers:
        counts[layer.type] = counts.get(layer.type, 0) + 1
    assert counts == {'Convolution': 13, 'ReLU': 15, 'Pooling': 5,
                      'InnerProduct': 2, 'Dropout': 2}
    assert by_name['conv1_1'].weight_shapes == ((64, 3, 3, 3), (64,))
    assert by_name['conv5_3'].weight_shapes == ((512, 512, 3, 3), (512,))
    assert by_name['pool5'].out_shape == (512, 7, 7)
    assert by_name['fc6'].weight_shapes == ((4096, 25088), (4096,))
    assert by_name['fc7'].weight_shapes == ((4096, 4096), (4096,))
    expected = VGGConfig(style=style).param_shapes()
    for name, shapes in expected.items():
        if name in by_name:
            assert by_name[name].weight_shapes == tuple(shapes)


# ---- bad input --------------------------------------------------------------

def _small():
    config = VGGConfig(**SMALL)
    return config, random_weights(config)


def test_caffemodel_missing_a_layer():
    config, weights = _small()
    del weights['conv3_2']
    with pytest.raises(CaffeFormatError, match="no blobs for layer 'conv3_2'"):
        build_network(config.prototxt(), caffemodel_bytes(config, weights))


def test_caffemodel_without_fc8_is_fine():
    config, weights = _small()
    del weights['fc8']  # after fc7: never run
    net = build_network(config.prototxt(), caffemodel_bytes(config, weights))
    assert net.output_dim == SMALL['fc']


def test_wrong_blob_shape():
    config, weights = _small()
    weights['fc6'][0] = weights['fc6'][0][:, :-1]
    with pytest.raises(CaffeFormatError,
                       match=r"'fc6' blob 0 has shape \(32, 783\).*\(32, 784\)"):
        build_network(config.prototxt(), caffemodel_bytes(config, weights))


def test_wrong_blob_count():
    config, weights = _small()
    weights['conv2_1'] = weights['conv2_1'][:1]
    with pytest.raises(CaffeFormatError, match="'conv2_1' has 1 blobs.*2"):
        build_network(config.prototxt(), caffemodel_bytes(config, weights))


def test_weights_for_other_widths():
    config, weights = _small()
    other = VGGConfig(widths=(4, 8, 8, 16, 8), fc=32, classes=5)
    with pytest.raises(CaffeFormatError, match="conv5_1"):
        build_network(other.prototxt(), caffemodel_bytes(config, weights))


def test_unsupported_layer_type_before_fc7():
    config, weights = _small()
    text = config.prototxt().replace('type: RELU', 'type: LRN', 1)
    with pytest.raises(CaffeFormatError,
                       match="'relu1_1' has type 'LRN'.*not supported"):
        build_network(text, caffemodel_bytes(config, weights))


def test_average_pooling_is_refused():
    config, weights = _small()
    text = config.prototxt().replace('pool: MAX', 'pool: AVE', 1)
    with pytest.raises(CaffeFormatError, match="pool1.*AVE"):
        build_network(text, caffemodel_bytes(config, weights))


def test_definition_without_fc7():
    config, weights = _small()
    text = config.prototxt().replace('"fc7"', '"fc_seven"')
    with pytest.raises(CaffeFormatError, match="no layer producing blob 'fc7'"):
        build_network(text, caffemodel_bytes(config, weights))


def test_layer_reading_an_unknown_blob():
    config, weights = _small()
    text = config.prototxt().replace('bottom: "pool2"', 'bottom: "pool9"')
    with pytest.raises(CaffeFormatError, match="reads blob 'pool9'"):
        build_network(text, caffemodel_bytes(config, weights))


def test_patches_of_the_wrong_size():
    config, weights = _small()
    net = build_network(config.prototxt(), caffemodel_bytes(config, weights))
    with pytest.raises(ValueError, match=r'\(100, 100\).*\(224, 224\)'):
        net(torch.zeros((1, 100, 100, 3), dtype=torch.uint8))
