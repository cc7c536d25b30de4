"""
Reads Caffe's network files without Caffe.

A Caffe network comes as two files: the definition (``deploy.prototxt``,
protobuf text format) and the trained weights (``.caffemodel``, a binary
protobuf ``NetParameter`` whose layers carry their parameter blobs). Caffe
itself cannot be installed any more, so the message types needed to read
both are declared here, in code, with the field numbers of Caffe's
``caffe.proto``. Only the subset a feed-forward classification net like
VGG16 uses is declared; fields this module does not know are kept aside by
the binary parser (a ``.caffemodel`` stores much more than we read) and are
errors in the text parser (a misspelt field in a definition must not pass).

Both layer formats are understood: the current ``layer`` field
(``LayerParameter``, type as a string) and the legacy ``layers`` field
(``V1LayerParameter``, type as an enum) that the original VGG16 files use.
"""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf import text_format
from google.protobuf.message import DecodeError, Message

from spacer.content_free import describe, without_content


class CaffeFormatError(ValueError):
    """A Caffe definition or weights file that cannot be read or used."""


_F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_SCALAR_TYPES = {
    'double': _F.TYPE_DOUBLE, 'float': _F.TYPE_FLOAT, 'int64': _F.TYPE_INT64,
    'uint64': _F.TYPE_UINT64, 'int32': _F.TYPE_INT32, 'uint32': _F.TYPE_UINT32,
    'bool': _F.TYPE_BOOL, 'string': _F.TYPE_STRING, 'bytes': _F.TYPE_BYTES,
}

_ENGINE = {'DEFAULT': 0, 'CAFFE': 1, 'CUDNN': 2}

# Message layouts, as in caffe.proto. Each field:
# (name, number, 'optional'|'repeated', type, default or None[, 'packed']).
# A type that is not a scalar names a message; 'enum:X' names an enum (X is
# looked up first among the message's own enums, then at file level).
_ENUMS = {'Phase': {'TRAIN': 0, 'TEST': 1}}

_MESSAGES: dict[str, dict[str, Any]] = {
    'BlobShape': {'fields': [
        ('dim', 1, 'repeated', 'int64', None, 'packed'),
    ]},
    'BlobProto': {'fields': [
        ('shape', 7, 'optional', 'BlobShape', None),
        ('data', 5, 'repeated', 'float', None, 'packed'),
        ('diff', 6, 'repeated', 'float', None, 'packed'),
        ('double_data', 8, 'repeated', 'double', None, 'packed'),
        ('double_diff', 9, 'repeated', 'double', None, 'packed'),
        ('num', 1, 'optional', 'int32', '0'),
        ('channels', 2, 'optional', 'int32', '0'),
        ('height', 3, 'optional', 'int32', '0'),
        ('width', 4, 'optional', 'int32', '0'),
    ]},
    'NetState': {'fields': [
        ('phase', 1, 'optional', 'enum:Phase', 'TEST'),
        ('level', 2, 'optional', 'int32', '0'),
        ('stage', 3, 'repeated', 'string', None),
    ]},
    'NetStateRule': {'fields': [
        ('phase', 1, 'optional', 'enum:Phase', None),
        ('min_level', 2, 'optional', 'int32', None),
        ('max_level', 3, 'optional', 'int32', None),
        ('stage', 4, 'repeated', 'string', None),
        ('not_stage', 5, 'repeated', 'string', None),
    ]},
    'ParamSpec': {
        'enums': {'DimCheckMode': {'STRICT': 0, 'PERMISSIVE': 1}},
        'fields': [
            ('name', 1, 'optional', 'string', None),
            ('share_mode', 2, 'optional', 'enum:DimCheckMode', None),
            ('lr_mult', 3, 'optional', 'float', '1'),
            ('decay_mult', 4, 'optional', 'float', '1'),
        ]},
    'FillerParameter': {
        'enums': {'VarianceNorm': {'FAN_IN': 0, 'FAN_OUT': 1, 'AVERAGE': 2}},
        'fields': [
            ('type', 1, 'optional', 'string', 'constant'),
            ('value', 2, 'optional', 'float', '0'),
            ('min', 3, 'optional', 'float', '0'),
            ('max', 4, 'optional', 'float', '1'),
            ('mean', 5, 'optional', 'float', '0'),
            ('std', 6, 'optional', 'float', '1'),
            ('sparse', 7, 'optional', 'int32', '-1'),
            ('variance_norm', 8, 'optional', 'enum:VarianceNorm', 'FAN_IN'),
        ]},
    'ConvolutionParameter': {
        'enums': {'Engine': _ENGINE},
        'fields': [
            ('num_output', 1, 'optional', 'uint32', None),
            ('bias_term', 2, 'optional', 'bool', 'true'),
            ('pad', 3, 'repeated', 'uint32', None),
            ('kernel_size', 4, 'repeated', 'uint32', None),
            ('stride', 6, 'repeated', 'uint32', None),
            ('dilation', 18, 'repeated', 'uint32', None),
            ('pad_h', 9, 'optional', 'uint32', '0'),
            ('pad_w', 10, 'optional', 'uint32', '0'),
            ('kernel_h', 11, 'optional', 'uint32', None),
            ('kernel_w', 12, 'optional', 'uint32', None),
            ('stride_h', 13, 'optional', 'uint32', None),
            ('stride_w', 14, 'optional', 'uint32', None),
            ('group', 5, 'optional', 'uint32', '1'),
            ('weight_filler', 7, 'optional', 'FillerParameter', None),
            ('bias_filler', 8, 'optional', 'FillerParameter', None),
            ('engine', 15, 'optional', 'enum:Engine', 'DEFAULT'),
            ('axis', 16, 'optional', 'int32', '1'),
            ('force_nd_im2col', 17, 'optional', 'bool', 'false'),
        ]},
    'PoolingParameter': {
        'enums': {'PoolMethod': {'MAX': 0, 'AVE': 1, 'STOCHASTIC': 2},
                  'Engine': _ENGINE},
        'fields': [
            ('pool', 1, 'optional', 'enum:PoolMethod', 'MAX'),
            ('pad', 4, 'optional', 'uint32', '0'),
            ('pad_h', 9, 'optional', 'uint32', '0'),
            ('pad_w', 10, 'optional', 'uint32', '0'),
            ('kernel_size', 2, 'optional', 'uint32', None),
            ('kernel_h', 5, 'optional', 'uint32', None),
            ('kernel_w', 6, 'optional', 'uint32', None),
            ('stride', 3, 'optional', 'uint32', '1'),
            ('stride_h', 7, 'optional', 'uint32', None),
            ('stride_w', 8, 'optional', 'uint32', None),
            ('engine', 11, 'optional', 'enum:Engine', 'DEFAULT'),
            ('global_pooling', 12, 'optional', 'bool', 'false'),
        ]},
    'InnerProductParameter': {'fields': [
        ('num_output', 1, 'optional', 'uint32', None),
        ('bias_term', 2, 'optional', 'bool', 'true'),
        ('weight_filler', 3, 'optional', 'FillerParameter', None),
        ('bias_filler', 4, 'optional', 'FillerParameter', None),
        ('axis', 5, 'optional', 'int32', '1'),
        ('transpose', 6, 'optional', 'bool', 'false'),
    ]},
    'InputParameter': {'fields': [
        ('shape', 1, 'repeated', 'BlobShape', None),
    ]},
    'DropoutParameter': {'fields': [
        ('dropout_ratio', 1, 'optional', 'float', '0.5'),
    ]},
    'ReLUParameter': {
        'enums': {'Engine': _ENGINE},
        'fields': [
            ('negative_slope', 1, 'optional', 'float', '0'),
            ('engine', 2, 'optional', 'enum:Engine', 'DEFAULT'),
        ]},
    'SoftmaxParameter': {
        'enums': {'Engine': _ENGINE},
        'fields': [
            ('engine', 1, 'optional', 'enum:Engine', 'DEFAULT'),
            ('axis', 2, 'optional', 'int32', '1'),
        ]},
    'LRNParameter': {
        'enums': {'NormRegion': {'ACROSS_CHANNELS': 0, 'WITHIN_CHANNEL': 1},
                  'Engine': _ENGINE},
        'fields': [
            ('local_size', 1, 'optional', 'uint32', '5'),
            ('alpha', 2, 'optional', 'float', '1'),
            ('beta', 3, 'optional', 'float', '0.75'),
            ('norm_region', 4, 'optional', 'enum:NormRegion',
             'ACROSS_CHANNELS'),
            ('k', 5, 'optional', 'float', '1'),
            ('engine', 6, 'optional', 'enum:Engine', 'DEFAULT'),
        ]},
    'LayerParameter': {'fields': [
        ('name', 1, 'optional', 'string', None),
        ('type', 2, 'optional', 'string', None),
        ('bottom', 3, 'repeated', 'string', None),
        ('top', 4, 'repeated', 'string', None),
        ('phase', 10, 'optional', 'enum:Phase', None),
        ('loss_weight', 5, 'repeated', 'float', None),
        ('param', 6, 'repeated', 'ParamSpec', None),
        ('blobs', 7, 'repeated', 'BlobProto', None),
        ('propagate_down', 11, 'repeated', 'bool', None),
        ('include', 8, 'repeated', 'NetStateRule', None),
        ('exclude', 9, 'repeated', 'NetStateRule', None),
        ('convolution_param', 106, 'optional', 'ConvolutionParameter', None),
        ('dropout_param', 108, 'optional', 'DropoutParameter', None),
        ('inner_product_param', 117, 'optional', 'InnerProductParameter',
         None),
        ('input_param', 143, 'optional', 'InputParameter', None),
        ('lrn_param', 118, 'optional', 'LRNParameter', None),
        ('pooling_param', 121, 'optional', 'PoolingParameter', None),
        ('relu_param', 123, 'optional', 'ReLUParameter', None),
        ('softmax_param', 125, 'optional', 'SoftmaxParameter', None),
    ]},
    'V1LayerParameter': {
        'enums': {
            'LayerType': {
                'NONE': 0, 'ABSVAL': 35, 'ACCURACY': 1, 'ARGMAX': 30,
                'BNLL': 2, 'CONCAT': 3, 'CONTRASTIVE_LOSS': 37,
                'CONVOLUTION': 4, 'DATA': 5, 'DECONVOLUTION': 39,
                'DROPOUT': 6, 'DUMMY_DATA': 32, 'EUCLIDEAN_LOSS': 7,
                'ELTWISE': 25, 'EXP': 38, 'FLATTEN': 8, 'HDF5_DATA': 9,
                'HDF5_OUTPUT': 10, 'HINGE_LOSS': 28, 'IM2COL': 11,
                'IMAGE_DATA': 12, 'INFOGAIN_LOSS': 13, 'INNER_PRODUCT': 14,
                'LRN': 15, 'MEMORY_DATA': 29,
                'MULTINOMIAL_LOGISTIC_LOSS': 16, 'MVN': 34, 'POOLING': 17,
                'POWER': 26, 'RELU': 18, 'SIGMOID': 19,
                'SIGMOID_CROSS_ENTROPY_LOSS': 27, 'SILENCE': 36,
                'SOFTMAX': 20, 'SOFTMAX_LOSS': 21, 'SPLIT': 22, 'SLICE': 33,
                'TANH': 23, 'WINDOW_DATA': 24, 'THRESHOLD': 31,
            },
            'DimCheckMode': {'STRICT': 0, 'PERMISSIVE': 1},
        },
        'fields': [
            ('bottom', 2, 'repeated', 'string', None),
            ('top', 3, 'repeated', 'string', None),
            ('name', 4, 'optional', 'string', None),
            ('include', 32, 'repeated', 'NetStateRule', None),
            ('exclude', 33, 'repeated', 'NetStateRule', None),
            ('type', 5, 'optional', 'enum:LayerType', None),
            ('blobs', 6, 'repeated', 'BlobProto', None),
            ('param', 1001, 'repeated', 'string', None),
            ('blob_share_mode', 1002, 'repeated', 'enum:DimCheckMode', None),
            ('blobs_lr', 7, 'repeated', 'float', None),
            ('weight_decay', 8, 'repeated', 'float', None),
            ('loss_weight', 35, 'repeated', 'float', None),
            ('convolution_param', 10, 'optional', 'ConvolutionParameter',
             None),
            ('dropout_param', 12, 'optional', 'DropoutParameter', None),
            ('inner_product_param', 17, 'optional', 'InnerProductParameter',
             None),
            ('lrn_param', 18, 'optional', 'LRNParameter', None),
            ('pooling_param', 19, 'optional', 'PoolingParameter', None),
            ('relu_param', 30, 'optional', 'ReLUParameter', None),
            ('softmax_param', 39, 'optional', 'SoftmaxParameter', None),
        ]},
    'NetParameter': {'fields': [
        ('name', 1, 'optional', 'string', None),
        ('input', 3, 'repeated', 'string', None),
        ('input_shape', 8, 'repeated', 'BlobShape', None),
        ('input_dim', 4, 'repeated', 'int32', None),
        ('force_backward', 5, 'optional', 'bool', 'false'),
        ('state', 6, 'optional', 'NetState', None),
        ('debug_info', 7, 'optional', 'bool', 'false'),
        ('layer', 100, 'repeated', 'LayerParameter', None),
        ('layers', 2, 'repeated', 'V1LayerParameter', None),
    ]},
}

# Caffe's own upgrade of V1 enum layer types to the current type strings,
# for the types a feed-forward classifier uses.
_V1_TYPE_NAMES = {
    'CONVOLUTION': 'Convolution', 'DROPOUT': 'Dropout',
    'INNER_PRODUCT': 'InnerProduct', 'POOLING': 'Pooling', 'RELU': 'ReLU',
    'SOFTMAX': 'Softmax', 'LRN': 'LRN', 'DATA': 'Data', 'CONCAT': 'Concat',
    'FLATTEN': 'Flatten', 'SPLIT': 'Split', 'SIGMOID': 'Sigmoid',
    'TANH': 'TanH', 'ACCURACY': 'Accuracy', 'SOFTMAX_LOSS': 'SoftmaxWithLoss',
    'ELTWISE': 'Eltwise', 'MEMORY_DATA': 'MemoryData',
}


def _add_enum(container, name: str, values: dict[str, int]) -> None:
    enum = container.add()
    enum.name = name
    for value_name, number in values.items():
        enum.value.add(name=value_name, number=number)


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    file_proto = descriptor_pb2.FileDescriptorProto(
        name='spacer_caffe_subset.proto', package='caffe', syntax='proto2')
    for enum_name, values in _ENUMS.items():
        _add_enum(file_proto.enum_type, enum_name, values)
    for message_name, layout in _MESSAGES.items():
        message = file_proto.message_type.add(name=message_name)
        own_enums = layout.get('enums', {})
        for enum_name, values in own_enums.items():
            _add_enum(message.enum_type, enum_name, values)
        for name, number, label, type_, default, *flags in layout['fields']:
            field = message.field.add(
                name=name, number=number,
                label=_REPEATED if label == 'repeated' else _OPTIONAL)
            if type_ in _SCALAR_TYPES:
                field.type = _SCALAR_TYPES[type_]
            elif type_.startswith('enum:'):
                enum_name = type_[len('enum:'):]
                field.type = _F.TYPE_ENUM
                field.type_name = (
                    f'.caffe.{message_name}.{enum_name}'
                    if enum_name in own_enums else f'.caffe.{enum_name}')
            else:
                field.type = _F.TYPE_MESSAGE
                field.type_name = f'.caffe.{type_}'
            if default is not None:
                field.default_value = default
            if 'packed' in flags:
                field.options.packed = True
    return file_proto


@lru_cache(maxsize=1)  # no arguments: one value, built once
def message_classes() -> dict[str, type[Message]]:
    """
    The Caffe message classes, by name ('NetParameter', 'BlobProto', ...).
    They live in a private descriptor pool, so they cannot clash with a real
    caffe_pb2 imported by someone else in the same process.
    """
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_descriptor())
    return {
        name: message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f'caffe.{name}'))
        for name in _MESSAGES
    }


def _parse_position(error: Exception) -> str:
    """' at line L, column C' of a protobuf text ParseError, when known."""
    try:
        line, column = error.GetLine(), error.GetColumn()
    except AttributeError:
        return ''
    return f' at line {line}, column {column}' if line is not None else ''


def parse_definition(text: str | bytes) -> Message:
    """Parse a deploy.prototxt (protobuf text format) into a NetParameter."""
    if isinstance(text, bytes):
        try:
            text = text.decode('utf-8')
        except UnicodeDecodeError as e:
            raise CaffeFormatError(
                f"Caffe net definition is not text (prototxt):"
                f" {describe(e)}.") from without_content(e)
    net = message_classes()['NetParameter']()
    try:
        text_format.Parse(text, net)
    except text_format.ParseError as e:
        raise CaffeFormatError(  # protobuf's text quotes the token
            f"Caffe net definition (prototxt) does not parse:"
            f" {describe(e)}{_parse_position(e)}.") from without_content(e)
    return net


def parse_weights(data: bytes) -> Message:
    """Parse a .caffemodel (binary protobuf) into a NetParameter."""
    net = message_classes()['NetParameter']()
    try:
        net.ParseFromString(data)
    except DecodeError as e:
        raise CaffeFormatError(
            f"Caffe weights file is not a binary NetParameter"
            f" (.caffemodel): {describe(e)}.") from without_content(e)
    if not net.layer and not net.layers:
        raise CaffeFormatError(
            "Caffe weights file holds no layers: not a .caffemodel?")
    return net


@dataclasses.dataclass(frozen=True)
class CaffeLayer:
    """One layer in either Caffe format, with its type as a string."""
    name: str
    type: str
    bottoms: tuple[str, ...]
    tops: tuple[str, ...]
    # The LayerParameter / V1LayerParameter itself: *_param fields and
    # blobs have the same names and message types in both formats.
    message: Message = dataclasses.field(repr=False, compare=False)


def _state_meets_rule(rule: Message) -> bool:
    """Caffe's NetStateRule check for the state Caffe nets are run in for
    inference: phase TEST, level 0, no stages."""
    if rule.HasField('phase') and rule.phase != _ENUMS['Phase']['TEST']:
        return False
    if rule.HasField('min_level') and 0 < rule.min_level:
        return False
    if rule.HasField('max_level') and 0 > rule.max_level:
        return False
    # The state has no stages: any required stage fails, not_stage passes.
    return not rule.stage


def _included_in_test_phase(layer: Message) -> bool:
    if layer.include:
        return any(_state_meets_rule(rule) for rule in layer.include)
    return not any(_state_meets_rule(rule) for rule in layer.exclude)


def net_layers(net: Message) -> list[CaffeLayer]:
    """
    The layers of a NetParameter in order, in one format, keeping only the
    layers a TEST-phase net has (as Caffe filters by include/exclude rules).
    """
    if net.layer and net.layers:
        raise CaffeFormatError(
            "Caffe net mixes the 'layer' and legacy 'layers' fields.")
    layers = []
    if net.layers:
        layer_type = net.layers[0].DESCRIPTOR.fields_by_name['type'].enum_type
        for layer in net.layers:
            enum_name = layer_type.values_by_number[layer.type].name
            layers.append((layer, _V1_TYPE_NAMES.get(enum_name, enum_name)))
    else:
        layers = [(layer, layer.type) for layer in net.layer]
    return [
        CaffeLayer(name=layer.name, type=type_name,
                   bottoms=tuple(layer.bottom), tops=tuple(layer.top),
                   message=layer)
        for layer, type_name in layers
        if _included_in_test_phase(layer)
    ]


def blob_shape(shape: Message) -> tuple[int, ...]:
    return tuple(int(d) for d in shape.dim)


def net_input(net: Message) -> tuple[str, tuple[int, ...]]:
    """
    The name and declared shape of the net's input blob, from the legacy
    ``input`` / ``input_dim`` / ``input_shape`` fields or an Input layer.
    """
    if net.input:
        if len(net.input) != 1:
            raise CaffeFormatError(
                f"Caffe net has {len(net.input)} inputs; expected one.")
        if net.input_shape:
            return net.input[0], blob_shape(net.input_shape[0])
        if len(net.input_dim) == 4:
            return net.input[0], tuple(int(d) for d in net.input_dim)
        raise CaffeFormatError(
            f"Caffe net input '{net.input[0]}' has no input_shape and"
            f" {len(net.input_dim)} input_dim values (needs 4).")
    for layer in net_layers(net):
        if layer.type == 'Input':
            shapes = layer.message.input_param.shape
            if len(layer.tops) != 1 or len(shapes) != 1:
                raise CaffeFormatError(
                    f"Caffe Input layer '{layer.name}' must have one top"
                    f" and one shape.")
            return layer.tops[0], blob_shape(shapes[0])
    raise CaffeFormatError(
        "Caffe net definition declares no input (no 'input' field and no"
        " Input layer).")


def blob_array(blob: Message) -> np.ndarray:
    """
    A parameter blob as a float32 array in the shape it declares: its
    ``shape`` field, else the legacy 4-D (num, channels, height, width).
    """
    if blob.HasField('shape'):
        shape = blob_shape(blob.shape)
    else:
        shape = (blob.num, blob.channels, blob.height, blob.width)
    if any(d < 0 for d in shape):
        raise CaffeFormatError(f"Caffe blob declares a negative dimension: {tuple(shape)}.")
    values = blob.double_data if len(blob.double_data) else blob.data
    array = np.asarray(values, dtype=np.float32)
    count = math.prod(shape)  # exact: numpy's int64 product can wrap around
    if array.size != count:
        raise CaffeFormatError(
            f"Caffe blob declares shape {shape} ({count} values) but holds"
            f" {array.size} values.")
    return array.reshape(shape)


def layer_blobs(net: Message) -> dict[str, list[np.ndarray]]:
    """
    Every layer's parameter blobs by layer name, as Caffe copies trained
    weights into a net: matched by layer name, in blob order.
    """
    blobs = {}
    for layer in list(net.layer) + list(net.layers):
        if len(layer.blobs):
            blobs[layer.name] = [blob_array(blob) for blob in layer.blobs]
    return blobs
