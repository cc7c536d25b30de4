"""
Reading Caffe files without Caffe (spacer.extractors.caffe_proto).

This module also holds what the other VGG16 tests share: a writer of
VGG16 deploy.prototxt files (the real layer structure, any channel widths),
a writer of .caffemodel files, and a plain numpy forward pass.

The .caffemodel writer encodes protobuf's wire format by hand from
caffe.proto's field numbers, independently of the message classes under
test, so a wrong field number in caffe_proto cannot cancel itself out.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from spacer.extractors import caffe_proto
from spacer.extractors.caffe_proto import CaffeFormatError

# ---------------------------------------------------------------------------
# protobuf wire format, by hand

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 -> two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint((number << 3) | wire_type)


def pb_varint(number: int, value: int) -> bytes:
    return _key(number, 0) + _varint(value)


def pb_bytes(number: int, payload: bytes | str) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    return _key(number, 2) + _varint(len(payload)) + payload


def pb_packed_floats(number: int, values: np.ndarray) -> bytes:
    return pb_bytes(number, np.asarray(values, '<f4').tobytes())


def pb_packed_varints(number: int, values) -> bytes:
    return pb_bytes(number, b''.join(_varint(int(v)) for v in values))


# caffe.proto field numbers
BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH = 1, 2, 3, 4
BLOB_DATA, BLOB_SHAPE, BLOBSHAPE_DIM = 5, 7, 1
NET_NAME, NET_LAYERS_V1, NET_LAYER = 1, 2, 100
LAYER_NAME, LAYER_TYPE, LAYER_BOTTOM, LAYER_TOP, LAYER_BLOBS = 1, 2, 3, 4, 7
LAYER_PHASE, LAYER_CONV_PARAM = 10, 106
V1_BOTTOM, V1_TOP, V1_NAME, V1_TYPE, V1_BLOBS = 2, 3, 4, 5, 6
V1_TYPES = {'Convolution': 4, 'ReLU': 18, 'Pooling': 17, 'InnerProduct': 14,
            'Dropout': 6, 'Softmax': 20}
UNKNOWN_FIELD = 107  # LayerParameter.data_param: not read by caffe_proto


def encode_blob(array: np.ndarray, legacy: bool) -> bytes:
    """A BlobProto: modern ``shape``, or legacy 4-D num/channels/h/w."""
    if legacy:
        dims = (1,) * (4 - array.ndim) + array.shape
        head = b''.join(pb_varint(n, d) for n, d in zip(
            (BLOB_NUM, BLOB_CHANNELS, BLOB_HEIGHT, BLOB_WIDTH), dims))
    else:
        head = pb_bytes(BLOB_SHAPE, pb_packed_varints(BLOBSHAPE_DIM,
                                                      array.shape))
    return head + pb_packed_floats(BLOB_DATA, array.ravel())


# ---------------------------------------------------------------------------
# VGG16 definitions

VGG16_BLOCKS = (2, 2, 3, 3, 3)  # convolutions per block
REAL_WIDTHS = (64, 128, 256, 512, 512)


@dataclass
class Layer:
    name: str
    type: str
    bottom: str
    top: str
    params: dict = field(default_factory=dict)


@dataclass
class VGGConfig:
    """A VGG16 with the real layer structure and chosen sizes."""
    widths: tuple = REAL_WIDTHS
    fc: int = 4096
    classes: int = 1000
    input_hw: int = 224
    # 'v1': legacy `layers` + `input_dim` (the Model Zoo file);
    # 'v2': `layer` + an Input layer; 'v2_input_shape': `layer` + `input`
    # and `input_shape` (as Caffe's upgrade tool writes the Model Zoo file).
    style: str = 'v1'

    def layers(self) -> list[Layer]:
        out, blob = [], 'data'
        for block, (count, width) in enumerate(zip(VGG16_BLOCKS,
                                                   self.widths), start=1):
            for i in range(1, count + 1):
                name = f'conv{block}_{i}'
                out.append(Layer(name, 'Convolution', blob, name,
                                 dict(num_output=width, pad=1,
                                      kernel_size=3)))
                out.append(Layer(f'relu{block}_{i}', 'ReLU', name, name))
                blob = name
            out.append(Layer(f'pool{block}', 'Pooling', blob,
                             f'pool{block}',
                             dict(pool='MAX', kernel_size=2, stride=2)))
            blob = f'pool{block}'
        for name, width in (('fc6', self.fc), ('fc7', self.fc)):
            n = name[2:]
            out.append(Layer(name, 'InnerProduct', blob, name,
                             dict(num_output=width)))
            out.append(Layer(f'relu{n}', 'ReLU', name, name))
            out.append(Layer(f'drop{n}', 'Dropout', name, name,
                             dict(dropout_ratio=0.5)))
            blob = name
        out.append(Layer('fc8', 'InnerProduct', 'fc7', 'fc8',
                         dict(num_output=self.classes)))
        out.append(Layer('prob', 'Softmax', 'fc8', 'prob'))
        return out

    def param_shapes(self) -> dict[str, list[tuple]]:
        """Each parameterized layer's blob shapes, worked out here (not by
        the code under test)."""
        shapes, channels, hw = {}, 3, self.input_hw
        for layer in self.layers():
            if layer.type == 'Convolution':
                width = layer.params['num_output']
                shapes[layer.name] = [(width, channels, 3, 3), (width,)]
                channels = width
            elif layer.type == 'Pooling':
                hw = caffe_pooled_size(hw, 2, 0, 2)
            elif layer.type == 'InnerProduct':
                width = layer.params['num_output']
                fan_in = channels * hw * hw
                shapes[layer.name] = [(width, fan_in), (width,)]
                channels, hw = width, 1
        return shapes

    def prototxt(self) -> str:
        return vgg_prototxt(self)


def _param_text(layer: Layer) -> str:
    if layer.type == 'Convolution':
        p = layer.params
        return (f"  convolution_param {{ num_output: {p['num_output']}"
                f" pad: {p['pad']} kernel_size: {p['kernel_size']} }}\n")
    if layer.type == 'Pooling':
        p = layer.params
        return (f"  pooling_param {{ pool: {p['pool']}"
                f" kernel_size: {p['kernel_size']} stride: {p['stride']} }}\n")
    if layer.type == 'InnerProduct':
        return (f"  inner_product_param {{ num_output:"
                f" {layer.params['num_output']} }}\n")
    if layer.type == 'Dropout':
        return (f"  dropout_param {{ dropout_ratio:"
                f" {layer.params['dropout_ratio']} }}\n")
    return ''


def vgg_prototxt(config: VGGConfig) -> str:
    """A deploy.prototxt like the VGG16 Model Zoo one (v1) or its
    upgraded forms (v2, v2_input_shape)."""
    hw = config.input_hw
    if config.style == 'v1':
        text = (f'name: "VGG_ILSVRC_16_layers"\ninput: "data"\n'
                f'input_dim: 10\ninput_dim: 3\ninput_dim: {hw}\n'
                f'input_dim: {hw}\n')
    elif config.style == 'v2_input_shape':
        text = (f'name: "VGG_ILSVRC_16_layers"\ninput: "data"\n'
                f'input_shape {{\n  dim: 10\n  dim: 3\n  dim: {hw}\n'
                f'  dim: {hw}\n}}\n')
    else:
        text = (f'name: "VGG16"\nlayer {{\n  name: "data"\n  type: "Input"\n'
                f'  top: "data"\n  input_param {{ shape {{ dim: 10 dim: 3'
                f' dim: {hw} dim: {hw} }} }}\n}}\n')
    v1 = config.style == 'v1'
    for layer in config.layers():
        type_text = _V1_NAMES[layer.type] if v1 else f'"{layer.type}"'
        text += (f'{"layers" if v1 else "layer"} {{\n'
                 f'  bottom: "{layer.bottom}"\n  top: "{layer.top}"\n'
                 f'  name: "{layer.name}"\n  type: {type_text}\n'
                 + _param_text(layer) + '}\n')
    return text


_V1_NAMES = {'Convolution': 'CONVOLUTION', 'ReLU': 'RELU',
             'Pooling': 'POOLING', 'InnerProduct': 'INNER_PRODUCT',
             'Dropout': 'DROPOUT', 'Softmax': 'SOFTMAX'}


def random_weights(config: VGGConfig, seed: int = 0) \
        -> dict[str, list[np.ndarray]]:
    """He-scaled random float32 weights; conv1_1 scaled down so that
    activations stay near 1 despite the 0-255 input."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, (w_shape, b_shape) in config.param_shapes().items():
        fan_in = int(np.prod(w_shape[1:]))
        std = np.sqrt(2.0 / fan_in) * (0.01 if name == 'conv1_1' else 1.0)
        weights[name] = [
            (rng.standard_normal(w_shape) * std).astype(np.float32),
            (rng.standard_normal(b_shape) * 0.1).astype(np.float32),
        ]
    return weights


def caffemodel_bytes(config: VGGConfig, weights: dict, legacy: bool = False,
                     style: str | None = None) -> bytes:
    """A .caffemodel as Caffe writes one: every layer (parameterless ones
    too), trained blobs on the parameterized ones."""
    style = style or config.style
    body = pb_bytes(NET_NAME, 'VGG16')
    for layer in config.layers():
        blobs = b''.join(
            pb_bytes(V1_BLOBS if style == 'v1' else LAYER_BLOBS,
                     encode_blob(b, legacy))
            for b in weights.get(layer.name, []))
        if style != 'v1':
            msg = (pb_bytes(LAYER_NAME, layer.name)
                   + pb_bytes(LAYER_TYPE, layer.type)
                   + pb_bytes(LAYER_BOTTOM, layer.bottom)
                   + pb_bytes(LAYER_TOP, layer.top)
                   + pb_varint(LAYER_PHASE, 1)
                   + pb_bytes(UNKNOWN_FIELD, pb_varint(4, 32))
                   + blobs)
            body += pb_bytes(NET_LAYER, msg)
        else:
            msg = (pb_bytes(V1_BOTTOM, layer.bottom)
                   + pb_bytes(V1_TOP, layer.top)
                   + pb_bytes(V1_NAME, layer.name)
                   + pb_varint(V1_TYPE, V1_TYPES[layer.type])
                   + blobs)
            body += pb_bytes(NET_LAYERS_V1, msg)
    return body


# ---------------------------------------------------------------------------
# numpy forward pass, layer by layer as Caffe defines them

def caffe_pooled_size(size, kernel, pad, stride):
    pooled = -(-(size + 2 * pad - kernel) // stride) + 1  # ceil division
    if pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def np_preprocess(patches: np.ndarray) -> np.ndarray:
    """pyspacer's Transformer: float, RGB->BGR, minus 128, to (C, H, W)."""
    x = patches.astype(np.float64)[..., ::-1] - 128.0
    return x.transpose(0, 3, 1, 2)


def np_conv(x, weight, bias, pad, stride=1):
    n, c, h, w = x.shape
    out_c, _, kh, kw = weight.shape
    xp = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    xp[:, :, pad:pad + h, pad:pad + w] = x
    oh = (h + 2 * pad - kh) // stride + 1
    ow = (w + 2 * pad - kw) // stride + 1
    out = np.zeros((n, out_c, oh, ow))
    for i in range(kh):
        for j in range(kw):
            window = xp[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
            out += np.einsum('nchw,oc->nohw', window, weight[:, :, i, j])
    return out + bias[None, :, None, None]


def np_max_pool(x, kernel, stride, pad=0):
    n, c, h, w = x.shape
    oh = caffe_pooled_size(h, kernel, pad, stride)
    ow = caffe_pooled_size(w, kernel, pad, stride)
    out = np.empty((n, c, oh, ow))
    for ph in range(oh):
        hs = ph * stride - pad
        he, hs = min(hs + kernel, h), max(hs, 0)
        for pw in range(ow):
            ws = pw * stride - pad
            we, ws = min(ws + kernel, w), max(ws, 0)
            out[:, :, ph, pw] = x[:, :, hs:he, ws:we].max(axis=(2, 3))
    return out


def np_vgg_forward(config: VGGConfig, weights: dict, patches: np.ndarray,
                   output_blob: str = 'fc7') -> np.ndarray:
    """Caffe's VGG16 forward pass in float64 numpy, returning the named
    blob as Caffe holds it after the whole pass (in-place layers
    included)."""
    blobs = {'data': np_preprocess(patches)}
    for layer in config.layers():
        x = blobs[layer.bottom]
        if layer.type == 'Convolution':
            w, b = weights[layer.name]
            y = np_conv(x, w.astype(np.float64), b.astype(np.float64),
                        layer.params['pad'])
        elif layer.type == 'ReLU':
            y = np.maximum(x, 0)
        elif layer.type == 'Pooling':
            y = np_max_pool(x, layer.params['kernel_size'],
                            layer.params['stride'])
        elif layer.type == 'InnerProduct':
            w, b = weights[layer.name]
            y = x.reshape(len(x), -1) @ w.astype(np.float64).T + b
        elif layer.type == 'Dropout':
            y = x
        else:
            continue  # Softmax: after fc7
        blobs[layer.top] = y
    return blobs[output_blob]


SMALL = dict(widths=(4, 8, 8, 16, 16), fc=32, classes=5)

# ---------------------------------------------------------------------------
# tests of the reader


@pytest.mark.parametrize('style', ['v1', 'v2', 'v2_input_shape'])
def test_definition_layers_and_input(style):
    config = VGGConfig(style=style)
    net = caffe_proto.parse_definition(config.prototxt())
    layers = caffe_proto.net_layers(net)
    expected = config.layers()
    if style == 'v2':
        assert layers[0].type == 'Input'
        layers = layers[1:]
    assert [(l.name, l.type, l.bottoms, l.tops) for l in layers] == [
        (l.name, l.type, (l.bottom,), (l.top,)) for l in expected]
    assert caffe_proto.net_input(net) == ('data', (10, 3, 224, 224))
    conv = layers[0].message.convolution_param
    assert (conv.num_output, list(conv.pad), list(conv.kernel_size)) == \
        (64, [1], [3])
    assert layers[0].message.convolution_param.bias_term  # Caffe default


@pytest.mark.parametrize('style', ['v1', 'v2'])
@pytest.mark.parametrize('legacy', [False, True])
def test_weights_read_back_exactly(style, legacy):
    config = VGGConfig(style=style, **SMALL)
    weights = random_weights(config)
    data = caffemodel_bytes(config, weights, legacy=legacy)
    blobs = caffe_proto.layer_blobs(caffe_proto.parse_weights(data))
    assert set(blobs) == set(weights)
    for name, arrays in weights.items():
        for got, want in zip(blobs[name], arrays, strict=True):
            if legacy:
                want = want.reshape((1,) * (4 - want.ndim) + want.shape)
            assert got.dtype == np.float32
            assert got.shape == want.shape
            np.testing.assert_array_equal(got, want)


def test_layers_excluded_from_test_phase_are_dropped():
    text = VGGConfig().prototxt().replace(
        'name: "drop6"', 'name: "drop6"\n  include { phase: TRAIN }')
    text = text.replace(
        'name: "drop7"', 'name: "drop7"\n  exclude { phase: TRAIN }')
    names = [l.name for l in caffe_proto.net_layers(
        caffe_proto.parse_definition(text))]
    assert 'drop6' not in names and 'drop7' in names


def test_message_classes_are_private_to_spacer():
    net_class = caffe_proto.message_classes()['NetParameter']
    assert net_class.DESCRIPTOR.full_name == 'caffe.NetParameter'
    from google.protobuf import descriptor_pool
    with pytest.raises(KeyError):
        descriptor_pool.Default().FindMessageTypeByName('caffe.NetParameter')


def test_prototxt_that_does_not_parse():
    with pytest.raises(CaffeFormatError, match='does not parse'):
        caffe_proto.parse_definition('layers { name: "conv1_1" kernal: 3 }')
    with pytest.raises(CaffeFormatError, match='does not parse'):
        caffe_proto.parse_definition('this is { not a prototxt')
    with pytest.raises(CaffeFormatError, match='not text'):
        caffe_proto.parse_definition(b'\xff\xfe\x00binary')


def test_caffemodel_that_does_not_parse():
    with pytest.raises(CaffeFormatError, match='not a binary NetParameter'):
        caffe_proto.parse_weights(b'not a caffemodel')
    with pytest.raises(CaffeFormatError, match='holds no layers'):
        caffe_proto.parse_weights(b'')


def test_blob_with_wrong_value_count():
    blob = pb_bytes(BLOB_SHAPE, pb_packed_varints(BLOBSHAPE_DIM, (2, 3))) \
        + pb_packed_floats(BLOB_DATA, np.zeros(5))
    layer = pb_bytes(LAYER_NAME, 'fc6') + pb_bytes(LAYER_BLOBS, blob)
    net = caffe_proto.parse_weights(pb_bytes(NET_LAYER, layer))
    with pytest.raises(CaffeFormatError, match=r'\(2, 3\).*holds 5'):
        caffe_proto.layer_blobs(net)


def test_blob_whose_declared_size_wraps_around_int64():
    # 7 * 0x6DB6DB6DB6DB6DB7 is 1 modulo 2**64: numpy's product would say 1 value.
    blob = pb_bytes(BLOB_SHAPE, pb_packed_varints(BLOBSHAPE_DIM, (7, 0x6DB6DB6DB6DB6DB7))) \
        + pb_packed_floats(BLOB_DATA, np.zeros(1))
    layer = pb_bytes(LAYER_NAME, 'fc6') + pb_bytes(LAYER_BLOBS, blob)
    net = caffe_proto.parse_weights(pb_bytes(NET_LAYER, layer))
    with pytest.raises(CaffeFormatError, match='holds 1 values'):
        caffe_proto.layer_blobs(net)


def test_definition_without_input():
    text = VGGConfig().prototxt().split('input: "data"')[0] + \
        'layers { name: "conv1_1" type: RELU bottom: "data" top: "x" }'
    with pytest.raises(CaffeFormatError, match='declares no input'):
        caffe_proto.net_input(caffe_proto.parse_definition(text))


@pytest.mark.parametrize('style', ['v1', 'v2'])
def test_weights_file_layer_types(style):
    config = VGGConfig(style=style, **SMALL)
    data = caffemodel_bytes(config, random_weights(config))
    layers = caffe_proto.net_layers(caffe_proto.parse_weights(data))
    assert [(l.name, l.type) for l in layers] == [
        (l.name, l.type) for l in config.layers()]


def test_stage_and_level_rules():
    text = VGGConfig().prototxt()
    for name, rule in [('drop6', 'include { stage: "train" }'),
                       ('relu6', 'include { min_level: 1 }'),
                       ('relu7', 'exclude { not_stage: "x" }'),
                       ('drop7', 'exclude { stage: "train" }'),
                       ('fc8', 'include { max_level: 0 phase: TEST }')]:
        text = text.replace(f'name: "{name}"', f'name: "{name}"\n  {rule}')
    names = [l.name for l in caffe_proto.net_layers(
        caffe_proto.parse_definition(text))]
    assert 'drop6' not in names and 'relu6' not in names
    assert 'relu7' not in names
    assert 'drop7' in names and 'fc8' in names
