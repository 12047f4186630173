"""The Session 9 rules, checked on a built model, each with its measured value."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from .layers import ConvUnit, DepthwiseSeparableConv2d
from .receptive_field import model_receptive_field

MAX_PARAMS = 200_000
MIN_RECEPTIVE_FIELD = 45  # "RF > 44"


@dataclass(frozen=True)
class RuleResult:
    rule: str
    passed: bool
    measured: object
    required: str

    def to_dict(self) -> dict:
        return asdict(self)


def convs_per_block(model: nn.Module) -> list[int]:
    """Convolution layers per block (a depthwise-separable pair counts as one layer)."""
    return [sum(isinstance(m, ConvUnit) for m in block.modules()) for block in model.blocks]


def count_dilated(model: nn.Module) -> int:
    return sum(1 for m in model.modules() if isinstance(m, nn.Conv2d) and max(m.dilation) > 1)


def count_separable(model: nn.Module) -> int:
    return sum(1 for m in model.modules() if isinstance(m, DepthwiseSeparableConv2d))


def has_gap_head(model: nn.Module) -> bool:
    head = getattr(model, "head", None)
    return head is not None and any(isinstance(m, (nn.AdaptiveAvgPool2d, nn.AvgPool2d))
                                    for m in head.modules())


def check_rules(model: nn.Module) -> list[RuleResult]:
    params = sum(p.numel() for p in model.parameters())
    per_block = convs_per_block(model)
    _, rf = model_receptive_field(model)
    return [
        RuleResult("parameters", params < MAX_PARAMS, params, f"< {MAX_PARAMS:,}"),
        RuleResult("C1 C2 C3 C4, 3 convs each", per_block == [3, 3, 3, 3], per_block, "[3, 3, 3, 3]"),
        RuleResult("dilated convolution", count_dilated(model) > 0, count_dilated(model), ">= 1"),
        RuleResult("depthwise-separable convolution", count_separable(model) > 0,
                   count_separable(model), ">= 1"),
        RuleResult("global average pooling in O", has_gap_head(model), has_gap_head(model), "True"),
        RuleResult("receptive field", rf >= MIN_RECEPTIVE_FIELD, rf, "> 44"),
    ]


def rules_summary(model: nn.Module) -> dict:
    results = check_rules(model)
    by_name = {r.rule: r for r in results}
    return {"params": by_name["parameters"].measured,
            "receptive_field": by_name["receptive field"].measured,
            "convs_per_block": by_name["C1 C2 C3 C4, 3 convs each"].measured,
            "dilated": by_name["dilated convolution"].measured,
            "depthwise_separable": by_name["depthwise-separable convolution"].measured,
            "gap": by_name["global average pooling in O"].measured,
            "ok": all(r.passed for r in results),
            "rules": [r.to_dict() for r in results]}
