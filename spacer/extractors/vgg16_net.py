"""
CoralNet's legacy VGG16 as a PyTorch module, built from Caffe's files.

The network is read off the definition (``deploy.prototxt``) layer by layer
from the input blob to the output blob (``fc7``): for VGG16 that is 13
convolutions with ReLUs, 5 max-poolings, fc6 and fc7 with their ReLUs and
dropouts. Each layer runs with Caffe's semantics:

- Convolution and InnerProduct as Caffe computes them (weights (out, in,
  kh, kw) and (out, in); the input of an InnerProduct flattened from its
  ``axis`` in C, H, W order).
- Max pooling with Caffe's output size, which rounds up (ceil) and drops a
  last window that would start in the padding; windows are clipped to the
  image, so padding never wins a max.
- Dropout is the identity: Caffe runs deploy nets in the TEST phase.
- Layers whose top is their bottom (Caffe's in-place ReLU and Dropout)
  rewrite that blob, so the output blob holds what Caffe's
  ``net.blobs[name]`` holds after a forward pass: for CoralNet's VGG16,
  ``fc7`` after ``relu7`` (non-negative features).

Layers after the output blob's last writer (fc8, softmax) are not built
and need no weights. Every parameter blob is checked against the shape the
definition implies, before torch is involved (``plan_network``).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from spacer.extractors.caffe_proto import (
    CaffeFormatError, CaffeLayer, layer_blobs, net_input, net_layers,
    parse_definition, parse_weights)
from spacer.extras import extra_imports

with extra_imports():
    import torch
    from torch import nn
    from torch.nn import functional as F

# Mean subtracted from every channel of the 0-255 BGR input (pyspacer's
# Transformer((128, 128, 128)), scale 1).
INPUT_MEAN = 128.0

SUPPORTED_TYPES = ('Convolution', 'ReLU', 'Pooling', 'InnerProduct',
                   'Dropout')


@dataclasses.dataclass
class LayerPlan:
    """One layer to run: what it computes, its blobs and its weights."""
    name: str
    type: str
    bottom: str
    top: str
    settings: dict[str, Any]
    in_shape: tuple[int, ...]   # without the batch axis
    out_shape: tuple[int, ...]  # without the batch axis
    weight_shapes: tuple[tuple[int, ...], ...]
    weights: tuple[np.ndarray, ...] = ()


@dataclasses.dataclass
class NetworkPlan:
    input_blob: str
    input_shape: tuple[int, ...]  # (C, H, W)
    output_blob: str
    layers: list[LayerPlan]

    @property
    def output_dim(self) -> int:
        return int(np.prod(self.layers[-1].out_shape))


def _pair(param, name: str, default: int | None,
          h_w: tuple[str, str] | None = None) -> tuple[int, int]:
    """
    Caffe's 2-D reading of a kernel/pad/stride/dilation setting: the
    ``*_h``/``*_w`` fields when either is set, else ``name`` (one value for
    both axes or one per axis), else ``default``.
    """
    h_name, w_name = h_w or (f'{name}_h', f'{name}_w')
    fields = param.DESCRIPTOR.fields_by_name
    if h_name in fields and (param.HasField(h_name)
                             or param.HasField(w_name)):
        return getattr(param, h_name), getattr(param, w_name)
    value = getattr(param, name)
    values = [value] if isinstance(value, int) else list(value)
    if not values:
        if default is None:
            raise CaffeFormatError(f"{name} is not specified")
        return default, default
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise CaffeFormatError(
        f"{name} has {len(values)} values; 2-D layers take 1 or 2")


def _conv_plan(layer: CaffeLayer, in_shape):
    param = layer.message.convolution_param
    if len(in_shape) != 3:
        raise CaffeFormatError(f"needs a (C, H, W) input, got {in_shape}")
    if param.axis != 1:
        raise CaffeFormatError(f"axis {param.axis} is not supported")
    channels, height, width = in_shape
    kernel = _pair(param, 'kernel_size', None, ('kernel_h', 'kernel_w'))
    pad, stride = _pair(param, 'pad', 0), _pair(param, 'stride', 1)
    dilation = _pair(param, 'dilation', 1)
    group, num_output = param.group, param.num_output
    if min(kernel) <= 0 or min(stride) <= 0 or min(dilation) <= 0:
        raise CaffeFormatError(
            f"kernel {kernel}, stride {stride}, dilation {dilation} must"
            f" be positive")
    if num_output <= 0 or group <= 0 or channels % group \
            or num_output % group:
        raise CaffeFormatError(
            f"num_output {num_output}, group {group}, stride {stride} do"
            f" not fit {channels} input channels")
    out_hw = []
    for size, k, p, s, d in zip((height, width), kernel, pad, stride,
                                dilation):
        extent = d * (k - 1) + 1
        out_hw.append((size + 2 * p - extent) // s + 1)
    if min(out_hw) <= 0:
        raise CaffeFormatError(
            f"kernel {kernel} does not fit the {height}x{width} input")
    shapes = [(num_output, channels // group) + tuple(kernel)]
    if param.bias_term:
        shapes.append((num_output,))
    settings = dict(stride=stride, padding=pad, dilation=dilation,
                    groups=group, bias=param.bias_term)
    return settings, (num_output, *out_hw), shapes


def caffe_pooled_size(size: int, kernel: int, pad: int, stride: int) -> int:
    """Caffe's pooling output length: ceil, then no window may start in
    the end padding."""
    pooled = int(math.ceil((size + 2 * pad - kernel) / stride)) + 1
    if pad and (pooled - 1) * stride >= size + pad:
        pooled -= 1
    return pooled


def _pool_plan(layer: CaffeLayer, in_shape):
    param = layer.message.pooling_param
    if len(in_shape) != 3:
        raise CaffeFormatError(f"needs a (C, H, W) input, got {in_shape}")
    pool_names = param.DESCRIPTOR.fields_by_name['pool'].enum_type
    if pool_names.values_by_number[param.pool].name != 'MAX':
        raise CaffeFormatError(
            f"pool method"
            f" {pool_names.values_by_number[param.pool].name} is not"
            f" supported (VGG16 uses MAX)")
    channels, height, width = in_shape
    if param.global_pooling:
        kernel = (height, width)
    elif param.HasField('kernel_size'):
        kernel = (param.kernel_size, param.kernel_size)
    elif param.HasField('kernel_h') and param.HasField('kernel_w'):
        kernel = (param.kernel_h, param.kernel_w)
    else:
        raise CaffeFormatError("kernel size is not specified")
    pad, stride = _pair(param, 'pad', 0), _pair(param, 'stride', 1)
    if min(kernel) <= 0 or min(stride) <= 0:
        raise CaffeFormatError(f"kernel {kernel}, stride {stride} invalid")
    out_hw = tuple(caffe_pooled_size(*args) for args in
                   zip((height, width), kernel, pad, stride))
    for size, out, p, s in zip((height, width), out_hw, pad, stride):
        # A window starting past the image would be empty (Caffe outputs
        # -FLT_MAX there); real nets never do this.
        if out <= 0 or (out - 1) * s - p >= size:
            raise CaffeFormatError(
                f"kernel {kernel}, stride {stride}, pad {pad} give empty"
                f" windows on a {height}x{width} input")
    settings = dict(kernel=kernel, stride=stride, pad=pad,
                    in_hw=(height, width), out_hw=out_hw)
    return settings, (channels, *out_hw), []


def _inner_product_plan(layer: CaffeLayer, in_shape):
    param = layer.message.inner_product_param
    axis = param.axis if param.axis >= 0 else param.axis + len(in_shape) + 1
    if not 1 <= axis <= len(in_shape):
        raise CaffeFormatError(f"axis {param.axis} out of range")
    num_input = int(np.prod(in_shape[axis - 1:]))
    num_output = param.num_output
    if num_output <= 0:
        raise CaffeFormatError("num_output must be positive")
    weight = (num_input, num_output) if param.transpose \
        else (num_output, num_input)
    shapes = [weight] + ([(num_output,)] if param.bias_term else [])
    settings = dict(axis=axis, transpose=param.transpose,
                    bias=param.bias_term)
    return settings, tuple(in_shape[:axis - 1]) + (num_output,), shapes


def _relu_plan(layer: CaffeLayer, in_shape):
    slope = layer.message.relu_param.negative_slope
    return dict(negative_slope=slope), in_shape, []


def _dropout_plan(layer: CaffeLayer, in_shape):
    return {}, in_shape, []


_PLANNERS = {
    'Convolution': _conv_plan, 'Pooling': _pool_plan,
    'InnerProduct': _inner_product_plan, 'ReLU': _relu_plan,
    'Dropout': _dropout_plan,
}


def _legacy_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The 4-D (num, channels, height, width) form old Caffe files store
    a blob of this shape in (leading axes of 1), if it has one."""
    if len(shape) > 4:
        return None
    return (1,) * (4 - len(shape)) + tuple(shape)


def _fit_blob(layer: str, index: int, blob: np.ndarray,
              expected: tuple[int, ...]) -> np.ndarray:
    if blob.shape == expected:
        return blob
    if blob.shape == _legacy_shape(expected):
        return blob.reshape(expected)
    raise CaffeFormatError(
        f"Caffe weights: layer '{layer}' blob {index} has shape"
        f" {blob.shape}, but the net definition needs {expected}.")


def plan_network(definition, weights=None, output_blob: str = 'fc7',
                 start_layer: str | None = None) -> NetworkPlan:
    """
    The layers from the input blob (or from the layer ``start_layer``) to
    ``output_blob``, with their shapes, and (when ``weights`` is given)
    their checked weights. ``definition`` and ``weights`` are parsed
    NetParameters (see caffe_proto) or raw file contents (prototxt text,
    caffemodel bytes).
    """
    if isinstance(definition, (str, bytes)):
        definition = parse_definition(definition)
    if isinstance(weights, (bytes, bytearray, memoryview)):
        weights = parse_weights(bytes(weights))

    input_blob, declared = net_input(definition)
    if len(declared) != 4 or min(declared) <= 0:
        raise CaffeFormatError(
            f"Caffe net input '{input_blob}' has shape {declared}; expected"
            f" (N, C, H, W).")
    layers = [layer for layer in net_layers(definition)
              if layer.type != 'Input']
    if start_layer is not None:
        names = [layer.name for layer in layers]
        if start_layer not in names:
            raise CaffeFormatError(
                f"Caffe net definition has no layer '{start_layer}' to start from.")
        layers = layers[names.index(start_layer):]
    writers = [i for i, layer in enumerate(layers)
               if output_blob in layer.tops]
    if not writers:
        raise CaffeFormatError(
            f"Caffe net definition has no layer producing blob"
            f" '{output_blob}'.")
    layers = layers[:writers[-1] + 1]
    trained = layer_blobs(weights) if weights is not None else None

    shapes = {input_blob: tuple(declared[1:])}
    plans = []
    for layer in layers:
        if layer.type not in _PLANNERS:
            raise CaffeFormatError(
                f"Caffe layer '{layer.name}' has type '{layer.type}', which"
                f" is not supported here (supported: "
                f"{', '.join(SUPPORTED_TYPES)}).")
        if len(layer.bottoms) != 1 or len(layer.tops) != 1:
            raise CaffeFormatError(
                f"Caffe layer '{layer.name}' must have one bottom and one"
                f" top; it has {len(layer.bottoms)} and {len(layer.tops)}.")
        bottom, top = layer.bottoms[0], layer.tops[0]
        if bottom not in shapes:
            raise CaffeFormatError(
                f"Caffe layer '{layer.name}' reads blob '{bottom}', which no"
                f" earlier layer produces.")
        try:
            settings, out_shape, weight_shapes = _PLANNERS[layer.type](
                layer, shapes[bottom])
        except CaffeFormatError as e:
            raise CaffeFormatError(
                f"Caffe layer '{layer.name}' ({layer.type}): {e}.") from e
        plan = LayerPlan(
            name=layer.name, type=layer.type, bottom=bottom, top=top,
            settings=settings, in_shape=shapes[bottom],
            out_shape=tuple(out_shape),
            weight_shapes=tuple(tuple(s) for s in weight_shapes))
        if trained is not None and weight_shapes:
            if layer.name not in trained:
                raise CaffeFormatError(
                    f"Caffe weights file has no blobs for layer"
                    f" '{layer.name}'.")
            blobs = trained[layer.name]
            if len(blobs) != len(weight_shapes):
                raise CaffeFormatError(
                    f"Caffe weights: layer '{layer.name}' has {len(blobs)}"
                    f" blobs, but the net definition needs"
                    f" {len(weight_shapes)}.")
            plan.weights = tuple(
                _fit_blob(layer.name, i, blob, shape)
                for i, (blob, shape) in enumerate(zip(blobs, weight_shapes)))
        shapes[top] = plan.out_shape
        plans.append(plan)
    return NetworkPlan(input_blob=input_blob, input_shape=tuple(declared[1:]),
                       output_blob=output_blob, layers=plans)


class CaffeMaxPool2d(nn.Module):
    """Max pooling with Caffe's output size: pad with -inf so every
    Caffe window (clipped to the image) is a full torch window."""

    def __init__(self, kernel, stride, pad, in_hw, out_hw):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        # Left/top: Caffe's pad. Right/bottom: whatever makes the last
        # window end where Caffe's does (negative crops).
        ends = [(o - 1) * s + k - size - p for o, s, k, size, p in
                zip(out_hw, stride, kernel, in_hw, pad)]
        self.padding = (pad[1], ends[1], pad[0], ends[0])

    def forward(self, x):
        if any(self.padding):
            x = F.pad(x, self.padding, value=float('-inf'))
        return F.max_pool2d(x, self.kernel, self.stride)


class Flatten(nn.Module):
    def __init__(self, axis: int):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return x.flatten(self.axis)


def _as_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _layer_module(plan: LayerPlan) -> nn.Module:
    s = plan.settings
    if plan.type == 'Convolution':
        out_channels, in_per_group = plan.weight_shapes[0][:2]
        conv = nn.Conv2d(in_per_group * s['groups'], out_channels,
                         plan.weight_shapes[0][2:], stride=s['stride'],
                         padding=s['padding'], dilation=s['dilation'],
                         groups=s['groups'], bias=s['bias'])
        _load_params(conv, plan.weights)
        return conv
    if plan.type == 'InnerProduct':
        weight = plan.weights[0].T if s['transpose'] else plan.weights[0]
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=s['bias'])
        _load_params(linear, (weight,) + plan.weights[1:])
        return nn.Sequential(Flatten(s['axis']), linear)
    if plan.type == 'Pooling':
        return CaffeMaxPool2d(**s)
    if plan.type == 'ReLU':
        slope = s['negative_slope']
        return nn.LeakyReLU(slope) if slope else nn.ReLU()
    return nn.Identity()  # Dropout, TEST phase


def _load_params(module: nn.Module, weights) -> None:
    if not weights:
        raise CaffeFormatError("network built without weights")
    with torch.no_grad():
        module.weight.copy_(_as_tensor(weights[0]))
        if module.bias is not None:
            module.bias.copy_(_as_tensor(weights[1]))


class VGG16Net(nn.Module):
    """
    The Caffe net of a NetworkPlan: takes (N, H, W, 3) uint8 RGB patches
    and returns the output blob, (N, D) float32, after Caffe's VGG16
    preprocessing (BGR channel order, 0-255 minus 128).
    """

    def __init__(self, plan: NetworkPlan):
        super().__init__()
        self.input_shape = plan.input_shape
        self.input_blob, self.output_blob = plan.input_blob, plan.output_blob
        self.output_dim = plan.output_dim
        self.layer_names = [layer.name for layer in plan.layers]
        self.wiring = [(layer.bottom, layer.top) for layer in plan.layers]
        self.layers = nn.ModuleList(
            _layer_module(layer) for layer in plan.layers)
        self.eval()

    def preprocess(self, patches: torch.Tensor) -> torch.Tensor:
        """uint8 (N, H, W, 3) RGB -> float (N, 3, H, W) BGR minus mean."""
        if patches.ndim != 4 or patches.shape[-1] != 3:
            raise ValueError(
                f"Expected patches of shape (N, H, W, 3), got"
                f" {tuple(patches.shape)}.")
        if tuple(patches.shape[1:3]) != tuple(self.input_shape[1:]):
            raise ValueError(
                f"Patches are {tuple(patches.shape[1:3])} pixels; this net"
                f" takes {tuple(self.input_shape[1:])}.")
        x = patches.flip(-1).permute(0, 3, 1, 2).to(torch.float32)
        return x - INPUT_MEAN

    def forward_blob(self, x: torch.Tensor) -> torch.Tensor:
        """Run the layers on an already preprocessed (N, C, H, W) input."""
        blobs = {self.input_blob: x}
        for module, (bottom, top) in zip(self.layers, self.wiring):
            blobs[top] = module(blobs[bottom])
        return blobs[self.output_blob].flatten(1)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.forward_blob(self.preprocess(patches))


def build_network(definition: str | bytes, weights: bytes,
                  output_blob: str = 'fc7', start_layer: str | None = None) -> VGG16Net:
    """A VGG16Net from the contents of a deploy.prototxt and a
    .caffemodel, in eval mode on the CPU."""
    return VGG16Net(plan_network(definition, weights, output_blob, start_layer))
