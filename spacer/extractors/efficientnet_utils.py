"""
The EfficientNet family's building parts, under pyspacer 0.14's names
(which follow lukemelas/EfficientNet-PyTorch, itself following the
TensorFlow original): the per-model and per-block parameters, the block
string notation, compound scaling of widths and depths, TensorFlow "same"
padded convolutions, swish and drop-connect. ``efficientnet_net`` builds
the network from them.
"""
from __future__ import annotations

import collections
import math
import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from spacer.extras import extra_imports

with extra_imports():
    import torch
    from torch import nn
    from torch.nn import functional as F

# What every layer of one model shares.
GlobalParams = collections.namedtuple('GlobalParams', [
    'batch_norm_momentum', 'batch_norm_epsilon', 'dropout_rate',
    'num_classes', 'width_coefficient', 'depth_coefficient',
    'depth_divisor', 'min_depth', 'drop_connect_rate', 'image_size',
], defaults=(None,) * 10)

# One stage of MBConv blocks (num_repeat of them).
BlockArgs = collections.namedtuple('BlockArgs', [
    'kernel_size', 'num_repeat', 'input_filters', 'output_filters',
    'expand_ratio', 'id_skip', 'stride', 'se_ratio',
], defaults=(None,) * 8)

# (width, depth, input resolution, dropout) per model: the compound
# scaling of the EfficientNet paper.
_COEFFICIENTS = {
    'efficientnet-b0': (1.0, 1.0, 224, 0.2),
    'efficientnet-b1': (1.0, 1.1, 240, 0.2),
    'efficientnet-b2': (1.1, 1.2, 260, 0.3),
    'efficientnet-b3': (1.2, 1.4, 300, 0.3),
    'efficientnet-b4': (1.4, 1.8, 380, 0.4),
    'efficientnet-b5': (1.6, 2.2, 456, 0.4),
    'efficientnet-b6': (1.8, 2.6, 528, 0.5),
    'efficientnet-b7': (2.0, 3.1, 600, 0.5),
}

# The B0 stages every model scales from.
_BASE_BLOCKS = [
    'r1_k3_s11_e1_i32_o16_se0.25', 'r2_k3_s22_e6_i16_o24_se0.25',
    'r2_k5_s22_e6_i24_o40_se0.25', 'r3_k3_s22_e6_i40_o80_se0.25',
    'r3_k5_s11_e6_i80_o112_se0.25', 'r4_k5_s22_e6_i112_o192_se0.25',
    'r1_k3_s11_e6_i192_o320_se0.25',
]


def relu_fn(x: torch.Tensor) -> torch.Tensor:
    """Swish, x * sigmoid(x) (pyspacer's name for it)."""
    return F.silu(x)


def round_filters(filters: int, global_params: GlobalParams) -> int:
    """A channel count scaled by the width coefficient, rounded to a
    multiple of depth_divisor and never more than 10% below the exact
    value."""
    multiplier = global_params.width_coefficient
    if not multiplier:
        return filters
    divisor = global_params.depth_divisor
    scaled = filters * multiplier
    rounded = max(global_params.min_depth or divisor,
                  int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return rounded


def round_repeats(repeats: int, global_params: GlobalParams) -> int:
    """A stage's block count scaled by the depth coefficient, rounded up."""
    multiplier = global_params.depth_coefficient
    if not multiplier:
        return repeats
    return math.ceil(multiplier * repeats)


def drop_connect(inputs: torch.Tensor, p: float,
                 training: bool) -> torch.Tensor:
    """In training, zero whole samples of a residual branch with
    probability p and rescale the rest; identity otherwise."""
    if not training:
        return inputs
    keep_prob = 1 - p
    noise = torch.rand([inputs.shape[0], 1, 1, 1], dtype=inputs.dtype,
                       device=inputs.device)
    keep = torch.floor(keep_prob + noise)
    return inputs / keep_prob * keep


def _same_padding(size: Sequence[int], kernel: Sequence[int],
                  stride: Sequence[int], dilation: Sequence[int]) \
        -> tuple[int, int, int, int]:
    """F.pad's (left, right, top, bottom) for TensorFlow 'SAME' on an
    input of size (height, width): output ceil(in / stride), the odd
    pixel going to the bottom/right."""
    totals = [max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
              for n, k, s, d in zip(size, kernel, stride, dilation)]
    (pad_h, pad_w) = totals
    return (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)


def _pair(value: Any) -> tuple[int, int]:
    """A stride or size given as n, [n] or (h, w), as (h, w)."""
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    return value * 2 if len(value) == 1 else value


class Conv2dDynamicSamePadding(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding worked out for each input's
    size (any image size, at a small cost per call)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size,
                 stride=1, dilation=1, groups: int = 1, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, _pair(stride),
                         0, dilation, groups, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padding = _same_padding(x.shape[-2:], self.weight.shape[-2:],
                                self.stride, self.dilation)
        if any(padding):
            x = F.pad(x, padding)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


class Conv2dStaticSamePadding(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding fixed once for ``image_size``
    (what ONNX export needs). As in pyspacer, every layer pads as if its
    input were image_size, which is exact while sizes stay even. Symmetric
    padding is left to the convolution itself (faster, same result);
    uneven padding is a ZeroPad2d, ``static_padding``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size,
                 image_size=None, **kwargs):
        if 'stride' in kwargs:
            kwargs['stride'] = _pair(kwargs['stride'])
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        assert image_size is not None
        left, right, top, bottom = _same_padding(
            _pair(image_size), self.weight.shape[-2:], self.stride,
            self.dilation)
        if (left, top) == (right, bottom) and self.padding == (0, 0):
            self.padding = (top, left)
            self.static_padding = Identity()
        else:
            self.static_padding = nn.ZeroPad2d((left, right, top, bottom))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.static_padding(x), self.weight, self.bias,
                        self.stride, self.padding, self.dilation, self.groups)


class Identity(nn.Module):
    """Returns its input (a no-op padding step)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return input


def get_same_padding_conv2d(image_size=None) -> Callable[..., nn.Conv2d]:
    """The 'same' convolution class to build with: padding fixed for
    ``image_size`` when given, else worked out per input."""
    if image_size is None:
        return Conv2dDynamicSamePadding
    return partial(Conv2dStaticSamePadding, image_size=image_size)


def efficientnet_params(model_name: str) -> tuple[float, float, int, float]:
    """(width, depth, resolution, dropout) of 'efficientnet-b0'..'-b7';
    KeyError for any other name."""
    return _COEFFICIENTS[model_name]


class BlockDecoder:
    """Reads and writes the TensorFlow notation for a stage of blocks,
    e.g. 'r1_k3_s11_e1_i32_o16_se0.25': repeats, kernel, stride (twice),
    expansion, input and output filters, squeeze-excitation ratio, and
    'noskip' to drop the identity shortcut."""

    @staticmethod
    def _decode_block_string(block_string: str) -> BlockArgs:
        assert isinstance(block_string, str)
        options = {}
        for part in block_string.split('_'):
            # Key: what precedes the first digit; value: the rest.
            match = re.fullmatch(r'(\D*)(\d.*)', part, flags=re.DOTALL)
            if match:
                options[match.group(1)] = match.group(2)
        stride = options['s']
        assert len(stride) == 1 or (len(stride) == 2 and stride[0] == stride[1])
        return BlockArgs(
            kernel_size=int(options['k']),
            num_repeat=int(options['r']),
            input_filters=int(options['i']),
            output_filters=int(options['o']),
            expand_ratio=int(options['e']),
            id_skip='noskip' not in block_string,
            se_ratio=float(options['se']) if 'se' in options else None,
            stride=[int(stride[0])])

    @staticmethod
    def _encode_block_string(block: Any) -> str:
        # pyspacer reads TensorFlow's ``strides`` (and so fails on its own
        # BlockArgs); ``stride`` as BlockArgs holds it is read too.
        strides = getattr(block, 'strides', None)
        strides = _pair(block.stride if strides is None else strides)
        parts = [f'r{int(block.num_repeat)}', f'k{int(block.kernel_size)}',
                 f's{int(strides[0])}{int(strides[1])}',
                 f'e{block.expand_ratio}', f'i{int(block.input_filters)}',
                 f'o{int(block.output_filters)}']
        if block.se_ratio is not None and 0 < block.se_ratio <= 1:
            parts.append(f'se{block.se_ratio}')
        if block.id_skip is False:
            parts.append('noskip')
        return '_'.join(parts)

    @staticmethod
    def decode(string_list: list[str]) -> list[BlockArgs]:
        """BlockArgs of each block string."""
        assert isinstance(string_list, list)
        return [BlockDecoder._decode_block_string(s) for s in string_list]

    @staticmethod
    def encode(blocks_args: list) -> list[str]:
        """The block string of each BlockArgs."""
        return [BlockDecoder._encode_block_string(b) for b in blocks_args]


def efficientnet(width_coefficient: float | None = None,
                 depth_coefficient: float | None = None,
                 dropout_rate: float = 0.2, drop_connect_rate: float = 0.2,
                 image_size: int | None = None, num_classes: int = 1000) \
        -> tuple[list[BlockArgs], GlobalParams]:
    """The B0 stages and the global parameters for these coefficients."""
    global_params = GlobalParams(
        batch_norm_momentum=0.99,       # TensorFlow's convention
        batch_norm_epsilon=1e-3,
        dropout_rate=dropout_rate,
        drop_connect_rate=drop_connect_rate,
        num_classes=num_classes,
        width_coefficient=width_coefficient,
        depth_coefficient=depth_coefficient,
        depth_divisor=8,
        min_depth=None,
        image_size=image_size,
    )
    return BlockDecoder.decode(list(_BASE_BLOCKS)), global_params


def get_model_params(model_name: str, override_params: dict | None) \
        -> tuple[list[BlockArgs], GlobalParams]:
    """Blocks and global parameters of a named model, with any
    GlobalParams fields in override_params replaced (ValueError for a
    field GlobalParams lacks)."""
    if not model_name.startswith('efficientnet'):
        raise NotImplementedError(
            f'model name is not pre-defined: {model_name}')
    width, depth, resolution, dropout = efficientnet_params(model_name)
    blocks_args, global_params = efficientnet(
        width_coefficient=width, depth_coefficient=depth,
        dropout_rate=dropout, image_size=resolution)
    if override_params:
        global_params = global_params._replace(**override_params)
    return blocks_args, global_params
