"""
The EfficientNet family as CoralNet and pyspacer build it: the
lukemelas/EfficientNet-PyTorch layout (TensorFlow "same" padding, swish,
BatchNorm eps 1e-3, squeeze and excitation), with that package's
state_dict key names and shapes, so that CoralNet's
``efficientnet_b0_ver1.pt`` loads unchanged. Models b0..b7 are scaled
from the B0 stages by ``efficientnet_utils``.

CoralNet's extractor uses B0 with a 1275-class head that exists only so
those weights load; its features are the 1280-d pooled output of the
last convolution (``extract_features``).
"""
from __future__ import annotations

from spacer.extractors.coralnet_b0 import MODEL_NAME, NUM_CLASSES
from spacer.extractors.efficientnet_utils import (
    BlockArgs,
    GlobalParams,
    drop_connect,
    efficientnet_params,
    get_model_params,
    get_same_padding_conv2d,
    relu_fn,
    round_filters,
    round_repeats,
)
from spacer.extractors.torch_extractors import load_checkpoint_into
from spacer.extras import extra_imports

with extra_imports():
    import torch
    from torch import nn
    from torch.nn import functional as F


def _batch_norm(channels: int, global_params: GlobalParams) -> nn.BatchNorm2d:
    # torch's momentum is 1 - TensorFlow's.
    return nn.BatchNorm2d(num_features=channels,
                          momentum=1 - global_params.batch_norm_momentum,
                          eps=global_params.batch_norm_epsilon)


class MBConvBlock(nn.Module):
    """Mobile inverted bottleneck: expand (1x1), depthwise (kxk), squeeze
    and excitation, project (1x1), identity shortcut when the block keeps
    its shape (and id_skip allows it)."""

    def __init__(self, block_args: BlockArgs, global_params: GlobalParams):
        super().__init__()
        self._block_args = block_args
        self._bn_mom = 1 - global_params.batch_norm_momentum
        self._bn_eps = global_params.batch_norm_epsilon
        se_ratio = block_args.se_ratio
        self.has_se = se_ratio is not None and 0 < se_ratio <= 1
        self.id_skip = block_args.id_skip
        Conv2d = get_same_padding_conv2d(image_size=global_params.image_size)

        inp = block_args.input_filters
        mid = inp * block_args.expand_ratio
        if block_args.expand_ratio != 1:
            self._expand_conv = Conv2d(in_channels=inp, out_channels=mid,
                                       kernel_size=1, bias=False)
            self._bn0 = _batch_norm(mid, global_params)
        self._depthwise_conv = Conv2d(
            in_channels=mid, out_channels=mid, groups=mid,
            kernel_size=block_args.kernel_size, stride=block_args.stride,
            bias=False)
        self._bn1 = _batch_norm(mid, global_params)
        if self.has_se:
            squeezed = max(1, int(inp * se_ratio))
            self._se_reduce = Conv2d(in_channels=mid, out_channels=squeezed,
                                     kernel_size=1)
            self._se_expand = Conv2d(in_channels=squeezed, out_channels=mid,
                                     kernel_size=1)
        self._project_conv = Conv2d(in_channels=mid,
                                    out_channels=block_args.output_filters,
                                    kernel_size=1, bias=False)
        self._bn2 = _batch_norm(block_args.output_filters, global_params)
        # As in pyspacer, a stage's first block (stride kept as [s]) never
        # has the shortcut; stride is the int 1 in the blocks after it.
        self._has_shortcut = bool(
            self.id_skip and block_args.stride == 1
            and block_args.input_filters == block_args.output_filters)

    def forward(self, inputs: torch.Tensor,
                drop_connect_rate: float | None = None) -> torch.Tensor:
        x = inputs
        if self._block_args.expand_ratio != 1:
            x = relu_fn(self._bn0(self._expand_conv(x)))
        x = relu_fn(self._bn1(self._depthwise_conv(x)))
        if self.has_se:
            scale = x.mean((2, 3), keepdim=True)
            scale = self._se_expand(relu_fn(self._se_reduce(scale)))
            x = x * torch.sigmoid(scale)
        x = self._bn2(self._project_conv(x))
        if self._has_shortcut:
            if drop_connect_rate:
                x = drop_connect(x, p=drop_connect_rate,
                                 training=self.training)
            x = x + inputs
        return x


class EfficientNet(nn.Module):
    """An EfficientNet: stem, MBConv stages, 1x1 head convolution, pooled
    features (``extract_features``) and a linear classifier
    (``forward``). Built with ``from_name``."""

    def __init__(self, blocks_args: list[BlockArgs] | None = None,
                 global_params: GlobalParams | None = None):
        super().__init__()
        assert isinstance(blocks_args, list), 'blocks_args should be a list'
        assert len(blocks_args) > 0, 'block args must be greater than 0'
        self._global_params = global_params
        self._blocks_args = blocks_args
        Conv2d = get_same_padding_conv2d(image_size=global_params.image_size)

        stem = round_filters(32, global_params)
        self._conv_stem = Conv2d(3, stem, kernel_size=3, stride=2, bias=False)
        self._bn0 = _batch_norm(stem, global_params)

        # Built in this order so that a seeded model's initial weights are
        # pyspacer's.
        self._blocks = nn.ModuleList([])
        for stage in blocks_args:
            stage = stage._replace(
                input_filters=round_filters(stage.input_filters,
                                            global_params),
                output_filters=round_filters(stage.output_filters,
                                             global_params),
                num_repeat=round_repeats(stage.num_repeat, global_params))
            self._blocks.append(MBConvBlock(stage, global_params))
            if stage.num_repeat > 1:
                stage = stage._replace(input_filters=stage.output_filters,
                                       stride=1)
            for _ in range(stage.num_repeat - 1):
                self._blocks.append(MBConvBlock(stage, global_params))

        head = round_filters(1280, global_params)
        self._conv_head = Conv2d(stage.output_filters, head, kernel_size=1,
                                 bias=False)
        self._bn1 = _batch_norm(head, global_params)
        self._dropout = global_params.dropout_rate
        self._fc = nn.Linear(head, global_params.num_classes)

    def extract_features(self, inputs: torch.Tensor) -> torch.Tensor:
        """(N, C) features: the last convolution's output, averaged over
        positions."""
        x = relu_fn(self._bn0(self._conv_stem(inputs)))
        rate = self._global_params.drop_connect_rate
        for index, block in enumerate(self._blocks):
            # Deeper blocks are dropped more often (training only).
            x = block(x, drop_connect_rate=rate and rate * (
                index / len(self._blocks)))
        x = relu_fn(self._bn1(self._conv_head(x)))
        return x.mean((2, 3))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(N, num_classes) logits."""
        x = self.extract_features(inputs)
        if self._dropout:
            x = F.dropout(x, p=self._dropout, training=self.training)
        return self._fc(x)

    @classmethod
    def from_name(cls, model_name: str,
                  override_params: dict | None = None) -> EfficientNet:
        """A freshly initialized model by name ('efficientnet-b0'..'-b7');
        override_params replaces GlobalParams fields (e.g. num_classes)."""
        cls._check_model_name_is_valid(model_name)
        return EfficientNet(*get_model_params(model_name, override_params))

    @classmethod
    def from_pretrained(cls, model_name: str,
                        num_classes: int = 1000) -> EfficientNet:
        """As pyspacer's: despite the name, a freshly initialized model
        (nothing is downloaded); weights are loaded separately."""
        model = EfficientNet.from_name(
            model_name, override_params={'num_classes': num_classes})
        if num_classes != 1000:
            # pyspacer draws the classifier a second time; so do we, so
            # seeded models stay identical.
            model._fc = nn.Linear(model._fc.in_features, num_classes)
        return model

    @classmethod
    def get_image_size(cls, model_name: str) -> int:
        """The input resolution the named model was designed for."""
        cls._check_model_name_is_valid(model_name)
        return efficientnet_params(model_name)[2]

    @classmethod
    def _check_model_name_is_valid(cls, model_name: str) -> None:
        valid = ['efficientnet_b' + str(i) for i in range(9)]
        if model_name.replace('-', '_') not in valid:
            raise ValueError('model_name should be one of: ' + ', '.join(valid))


class EfficientNetB0(EfficientNet):
    """CoralNet's B0 as a feature network: ``forward`` returns the
    (N, 1280) features. Drop-connect is off (it is random, and only for
    training), so train-mode passes such as BatchNorm calibration are
    deterministic."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__(*get_model_params(MODEL_NAME, {
            'num_classes': num_classes, 'drop_connect_rate': None}))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.extract_features(inputs)


def load_b0(checkpoint: object) -> EfficientNetB0:
    """
    An EfficientNetB0 in eval mode from a loaded checkpoint
    ``{'net': state_dict}``. Anything else (not a dict, no 'net', missing,
    unexpected or wrongly shaped tensors) raises WeightsFormatError naming
    what is wrong.
    """
    model = load_checkpoint_into(
        EfficientNetB0(), checkpoint, family='EfficientNet',
        architecture='EfficientNet-B0', layout=' (lukemelas layout)')
    model.eval()
    model.requires_grad_(False)
    return model
