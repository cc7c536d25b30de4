"""
EfficientNet-B0 as CoralNet trained it: the lukemelas/EfficientNet-PyTorch
layout (TensorFlow "same" padding, swish, BatchNorm eps 1e-3, squeeze and
excitation), with that package's state_dict key names and shapes so that
CoralNet's ``efficientnet_b0_ver1.pt`` loads unchanged. The 1275-class head
exists only so those weights load; features are the 1280-d pooled output
of the last convolution.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Mapping

from spacer.extractors.data_files import WeightsFormatError
from spacer.extras import extra_imports

with extra_imports():
    import torch
    from torch import nn
    from torch.nn import functional as F

BN_EPS = 1e-3
BN_MOMENTUM = 0.01      # torch's convention for TF's 0.99
SE_RATIO = 0.25
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1275      # CoralNet's label set when the weights were trained
FEATURE_DIM = HEAD_CHANNELS


@dataclass(frozen=True)
class Stage:
    repeats: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int


# EfficientNet-B0 (width and depth coefficients 1.0).
B0_STAGES = (
    Stage(1, 3, 1, 1, 32, 16),
    Stage(2, 3, 2, 6, 16, 24),
    Stage(2, 5, 2, 6, 24, 40),
    Stage(3, 3, 2, 6, 40, 80),
    Stage(3, 5, 1, 6, 80, 112),
    Stage(4, 5, 2, 6, 112, 192),
    Stage(1, 3, 1, 6, 192, 320),
)


class SameConv2d(nn.Conv2d):
    """Conv2d padded like TensorFlow's 'SAME': output size ceil(in/stride),
    any odd padding going to the bottom/right. Symmetric padding is left to
    the convolution itself (faster); stride-2 layers pad explicitly."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, groups: int = 1, bias: bool = True):
        symmetric = stride == 1
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         padding=(kernel_size - 1) // 2 if symmetric else 0,
                         groups=groups, bias=bias)
        self.symmetric = symmetric

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.symmetric:
            x = F.pad(x, self._same_padding(x.shape[-2], x.shape[-1]))
        return super().forward(x)

    def _same_padding(self, height: int, width: int) -> list[int]:
        pads = []
        for size, k, s in ((width, self.kernel_size[1], self.stride[1]),
                           (height, self.kernel_size[0], self.stride[0])):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return pads


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck: expand (1x1), depthwise (kxk), squeeze
    and excitation, project (1x1), identity skip when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int,
                 stride: int, expand: int):
        super().__init__()
        mid = in_channels * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(in_channels, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride,
                                          groups=mid, bias=False)
        self._bn1 = _bn(mid)
        squeezed = max(1, int(in_channels * SE_RATIO))
        self._se_reduce = SameConv2d(mid, squeezed, 1)
        self._se_expand = SameConv2d(squeezed, mid, 1)
        self._project_conv = SameConv2d(mid, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.has_expand:
            x = F.silu(self._bn0(self._expand_conv(x)))
        x = F.silu(self._bn1(self._depthwise_conv(x)))
        scale = x.mean((2, 3), keepdim=True)
        scale = self._se_expand(F.silu(self._se_reduce(scale)))
        x = x * torch.sigmoid(scale)
        x = self._bn2(self._project_conv(x))
        # Drop-connect is a training-time regularizer: absent here.
        return x + inputs if self.has_skip else x


class EfficientNetB0(nn.Module):
    """EfficientNet-B0 whose forward() returns the (N, 1280) features."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, 2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks = []
        for stage in B0_STAGES:
            for i in range(stage.repeats):
                blocks.append(MBConvBlock(
                    stage.in_channels if i == 0 else stage.out_channels,
                    stage.out_channels, stage.kernel,
                    stage.stride if i == 0 else 1, stage.expand))
        self._blocks = nn.ModuleList(blocks)
        last = B0_STAGES[-1].out_channels
        self._conv_head = SameConv2d(last, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        # The classifier CoralNet trained with; kept for loading only.
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.silu(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.silu(self._bn1(self._conv_head(x)))
        return x.mean((2, 3))


def strip_module_prefix(state_dict: Mapping[str, torch.Tensor]) \
        -> OrderedDict[str, torch.Tensor]:
    """Keys saved through DataParallel start with 'module.'; drop it."""
    return OrderedDict(
        (k[len('module.'):] if k.startswith('module.') else k, v)
        for k, v in state_dict.items())


def _shape_of(value: object) -> tuple | str:
    return tuple(value.shape) if isinstance(value, torch.Tensor) \
        else type(value).__name__


def load_b0(checkpoint: object) -> EfficientNetB0:
    """
    An EfficientNetB0 in eval mode from a loaded checkpoint
    ``{'net': state_dict}``. Anything else (not a dict, no 'net', missing,
    unexpected or wrongly shaped tensors) raises WeightsFormatError naming
    what is wrong.
    """
    if not isinstance(checkpoint, Mapping) or 'net' not in checkpoint:
        found = sorted(map(str, checkpoint))[:5] \
            if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise WeightsFormatError(
            f"EfficientNet weights must be a dict {{'net': state_dict}};"
            f" found {found}.")
    state_dict = checkpoint['net']
    if not isinstance(state_dict, Mapping):
        raise WeightsFormatError(
            f"EfficientNet weights' 'net' must be a state_dict, not"
            f" {type(state_dict).__name__}.")
    state_dict = strip_module_prefix(state_dict)
    model = EfficientNetB0()
    expected = model.state_dict()
    # BatchNorm fills in num_batches_tracked for checkpoints made before
    # torch 0.4.1, as pyspacer's strict load does.
    missing = [k for k in expected if k not in state_dict
               and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        raise WeightsFormatError(
            "Weights file does not hold an EfficientNet-B0 state_dict"
            f" (lukemelas layout): {len(missing)} missing keys"
            f" {missing[:3]}, {len(unexpected)} unexpected keys"
            f" {unexpected[:3]}.")
    wrong = [(k, _shape_of(v), tuple(expected[k].shape))
             for k, v in state_dict.items()
             if _shape_of(v) != tuple(expected[k].shape)]
    if wrong:
        raise WeightsFormatError(
            "Weights file has tensors of the wrong shape for EfficientNet-B0"
            f" (key, found, expected): {wrong[:3]}.")
    model.load_state_dict(state_dict)
    model.eval()
    model.requires_grad_(False)
    return model
