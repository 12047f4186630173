"""The C1 C2 C3 C4 O network, built from a typed config; named presets are data.

Each block Ci holds exactly three ConvUnits. With `residual=True` the block adds the output
of its first conv to the output of its third (shapes match because convs 2-3 keep the size).
In conv-bn-act order the third unit stops at its BatchNorm and the ReLU follows the sum, as in
ResNet: a ReLU inside the branch would pass no gradient while the branch's zero-initialised
BatchNorm scale makes its input exactly 0, and the branch would never start learning.
O is global average pooling followed by a 1x1 conv classifier (a linear layer on the pooled
vector).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .layers import ConvKind, ConvUnit, Order
from ..errors import UserError


@dataclass(frozen=True)
class ConvSpec:
    out_channels: int
    kind: ConvKind = "standard"
    stride: int = 1
    dilation: int = 1
    kernel: int = 3  # large depthwise kernels see far for almost no parameters


@dataclass(frozen=True)
class BlockSpec:
    convs: tuple[ConvSpec, ConvSpec, ConvSpec]
    residual: bool = False  # skip from conv 1's output to conv 3's output


@dataclass(frozen=True)
class ModelConfig:
    blocks: tuple[BlockSpec, ...]
    order: Order = "conv-bn-act"
    dropout: float = 0.0  # after every conv unit; regularisation mostly comes from augmentation
    in_channels: int = 3
    num_classes: int = 10

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        blocks = tuple(
            BlockSpec(convs=tuple(ConvSpec(**c) for c in b["convs"]), residual=b["residual"])
            for b in d["blocks"])
        rest = {k: v for k, v in d.items() if k != "blocks"}
        return cls(blocks=blocks, **rest)


class Block(nn.Module):
    def __init__(self, spec: BlockSpec, in_channels: int, order: Order, dropout: float):
        super().__init__()
        units, c = [], in_channels
        self.residual = spec.residual
        activate_after_sum = spec.residual and order == "conv-bn-act"
        for i, conv in enumerate(spec.convs):
            last = i == len(spec.convs) - 1
            units.append(ConvUnit(conv.kind, c, conv.out_channels, conv.stride, conv.dilation,
                                  order, dropout, activation=not (last and activate_after_sum),
                                  kernel=conv.kernel))
            c = conv.out_channels
        self.conv1, self.conv2, self.conv3 = units
        self.post_sum = nn.ReLU(inplace=True) if activate_after_sum else nn.Identity()
        if spec.residual:
            second, third = spec.convs[1], spec.convs[2]
            if second.stride != 1 or third.stride != 1 or second.out_channels != spec.convs[0].out_channels \
                    or third.out_channels != spec.convs[0].out_channels:
                raise ValueError("a residual block needs convs 2 and 3 to keep conv 1's shape")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        y = self.conv3(self.conv2(x))
        return self.post_sum(x + y) if self.residual else y


class Head(nn.Module):
    """O: global average pooling, then a 1x1 conv to class logits."""

    def __init__(self, in_channels: int, num_classes: int):
        super().__init__()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.gap(x)).flatten(1)  # (B, num_classes)


class Net(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config.in_channels
        blocks = []
        for spec in config.blocks:
            blocks.append(Block(spec, c, config.order, config.dropout))
            c = spec.convs[-1].out_channels
        self.blocks = nn.ModuleList(blocks)
        self.head = Head(c, config.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for block in self.blocks:
            if block.residual:  # each residual branch starts near zero: stable early training
                bn = next(m for m in block.conv3 if isinstance(m, nn.BatchNorm2d))
                nn.init.zeros_(bn.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x  # (B, C4, H/16, W/16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ---------------------------------------------------------------- presets (variants are data)

def _sep(c: int, stride: int = 1, dilation: int = 1, kernel: int = 3) -> ConvSpec:
    return ConvSpec(c, "separable", stride, dilation, kernel)


def _std(c: int, stride: int = 1, dilation: int = 1) -> ConvSpec:
    return ConvSpec(c, "standard", stride, dilation)


def seed_config() -> ModelConfig:
    """The reference design: 12 separable convs, dilated stride-2 third conv, ReLU-BN-Dropout."""
    return ModelConfig(
        blocks=tuple(BlockSpec((_sep(w), _sep(w), _sep(w, stride=2, dilation=2)))
                     for w in (32, 64, 128, 224)),
        order="conv-act-bn", dropout=0.05)


def default_config() -> ModelConfig:
    """Residual blocks; standard convs where the image is large, separable ones where channels are."""
    return ModelConfig(blocks=(
        BlockSpec((_std(32), _std(32), _std(32)), residual=True),                      # 32x32
        BlockSpec((_std(64, stride=2), _sep(64), _sep(64, dilation=2)), residual=True),  # 16x16
        BlockSpec((_sep(128, stride=2), _sep(128), _sep(128)), residual=True),          # 8x8
        BlockSpec((_sep(192, stride=2), _sep(192), _sep(192)), residual=True),          # 4x4
    ))


def highres_config() -> ModelConfig:
    """A candidate successor to `default` (issue 17): parameters spent where the image is large.
    C1 at 32x32 with 5x5 depthwise-separable convs, C2 and C3 both at 16x16 (the dilated convs
    there), C4 at 8x8 instead of 4x4; 178,570 parameters, 33.9M multiply-adds (default: 31.3M),
    receptive field 73. Not trained yet: it becomes the default only if it wins on the
    validation split."""
    return ModelConfig(blocks=(
        BlockSpec((_std(48), _sep(48, kernel=5), _sep(48, kernel=5)), residual=True),             # 32x32
        BlockSpec((_sep(96, stride=2), _sep(96, kernel=5), _sep(96, dilation=2)), residual=True),  # 16x16
        BlockSpec((_sep(128), _sep(128, kernel=5), _sep(128, dilation=3)), residual=True),         # 16x16
        BlockSpec((_sep(176, stride=2), _sep(176), _sep(176)), residual=True),                     # 8x8
    ))


def wide_teacher_config() -> ModelConfig:
    """A distillation teacher, never shipped: the default layout with standard convs 2-2.7x as
    wide (7.8M parameters, 40 times the 200K rule; 360M multiply-adds per image against 31M),
    for a GPU to train, in the hope that it teaches more than an ensemble of student-sized
    networks."""
    return ModelConfig(blocks=(
        BlockSpec((_std(64), _std(64), _std(64)), residual=True),                        # 32x32
        BlockSpec((_std(128, stride=2), _std(128), _std(128, dilation=2)), residual=True),  # 16x16
        BlockSpec((_std(256, stride=2), _std(256), _std(256)), residual=True),           # 8x8
        BlockSpec((_std(512, stride=2), _std(512), _std(512)), residual=True),           # 4x4
    ))


PRESETS = {  # networks under the Session 9 rules: the app offers these
    "default": default_config,
    "seed": seed_config,
    "highres": highres_config,
}
TEACHER_PRESETS = {  # larger networks that only teach (command line)
    "wide": wide_teacher_config,
}
ALL_PRESETS = {**PRESETS, **TEACHER_PRESETS}


def get_config(preset: str) -> ModelConfig:
    try:
        return ALL_PRESETS[preset]()
    except KeyError:
        raise UserError(f"unknown preset {preset!r}; choose one of {list(ALL_PRESETS)}") from None


def build_model(preset_or_config: str | ModelConfig = "default") -> Net:
    config = get_config(preset_or_config) if isinstance(preset_or_config, str) else preset_or_config
    return Net(config)
