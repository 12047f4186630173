"""Each rule, broken on its own, is reported failing; every other rule still passes."""
from __future__ import annotations

import pytest
from torch import nn

from cifar_s9.model.layers import ConvUnit
from cifar_s9.model.net import BlockSpec, ConvSpec, ModelConfig, Net
from cifar_s9.model.rules import (MAX_PARAMS, check_rules, convs_per_block, count_dilated,
                            count_separable, has_gap_head, rules_summary)

PARAMS = "parameters"
THREE_CONVS = "C1 C2 C3 C4, 3 convs each"
DILATED = "dilated convolution"
SEPARABLE = "depthwise-separable convolution"
GAP = "global average pooling in O"
RF = "receptive field"


def sep(c, s=1, d=1):
    return ConvSpec(c, "separable", s, d)


def std(c, s=1, d=1):
    return ConvSpec(c, "standard", s, d)


def base_blocks(widths=(16, 24, 32, 48)):
    """The default preset's shape at small widths: RF 81, one dilated conv, separable convs."""
    a, b, c, d = widths
    return [BlockSpec((std(a), std(a), std(a))),
            BlockSpec((std(b, 2), sep(b), sep(b, 1, 2))),
            BlockSpec((sep(c, 2), sep(c), sep(c))),
            BlockSpec((sep(d, 2), sep(d), sep(d)))]


def build(blocks) -> Net:
    return Net(ModelConfig(blocks=tuple(blocks)))


def failing(model) -> set[str]:
    return {r.rule for r in check_rules(model) if not r.passed}


class Stack(nn.Sequential):
    """A stand-in block holding any number of ConvUnits."""


def test_the_baseline_passes_everything():
    model = build(base_blocks())
    assert failing(model) == set()
    summary = rules_summary(model)
    assert summary["ok"] is True
    assert summary["receptive_field"] == 81
    assert summary["convs_per_block"] == [3, 3, 3, 3]
    assert len(summary["rules"]) == 6


def test_too_many_parameters():
    blocks = base_blocks()
    blocks[3] = BlockSpec((std(256, 2), std(256), std(256)))  # 256*256*9 = 589,824 in one conv
    model = build(blocks)
    assert model.num_params() >= MAX_PARAMS
    assert failing(model) == {PARAMS}
    assert rules_summary(model)["ok"] is False


def test_exactly_the_limit_is_too_many(monkeypatch):
    model = build(base_blocks())
    monkeypatch.setattr("cifar_s9.model.rules.MAX_PARAMS", model.num_params())
    assert failing(model) == {PARAMS}  # the rule is "< 200,000", not "<="
    monkeypatch.setattr("cifar_s9.model.rules.MAX_PARAMS", model.num_params() + 1)
    assert failing(model) == set()


@pytest.mark.parametrize("n_convs", [2, 4])
def test_a_block_with_the_wrong_number_of_convs(n_convs):
    model = build(base_blocks())
    units = [ConvUnit("standard", 3, 16)] + [ConvUnit("standard", 16, 16) for _ in range(n_convs - 1)]
    model.blocks[0] = Stack(*units)
    assert convs_per_block(model) == [n_convs, 3, 3, 3]
    assert failing(model) == {THREE_CONVS}
    result = next(r for r in check_rules(model) if r.rule == THREE_CONVS)
    assert result.measured == [n_convs, 3, 3, 3]
    # the receptive field follows the real number of convs: 81 -2 (one fewer) or +2 (one more)
    assert rules_summary(model)["receptive_field"] == 81 + 2 * (n_convs - 3)


def test_three_blocks_instead_of_four():
    model = build(base_blocks()[:3])  # also drops the RF to 41
    assert convs_per_block(model) == [3, 3, 3]
    assert THREE_CONVS in failing(model)


def test_no_dilated_conv():
    blocks = base_blocks()
    blocks[1] = BlockSpec((std(24, 2), sep(24), sep(24)))
    model = build(blocks)
    assert count_dilated(model) == 0
    assert failing(model) == {DILATED}


def test_no_separable_conv():
    model = build([BlockSpec((std(w, s), std(w), std(w, 1, d)))
                   for w, s, d in ((16, 1, 1), (24, 2, 2), (32, 2, 1), (48, 2, 1))])
    assert count_separable(model) == 0
    assert failing(model) == {SEPARABLE}


def test_no_global_average_pooling_in_the_head():
    model = build(base_blocks())
    model.head = nn.Sequential(nn.Flatten(), nn.Linear(48 * 4 * 4, 10))  # a flatten-dense head
    assert not has_gap_head(model)
    assert failing(model) == {GAP}
    del model.head
    assert not has_gap_head(model)


def stride_one(dilations) -> list[BlockSpec]:
    """Twelve stride-1 convs: RF = 1 + sum over convs of 2*d (always odd for 3x3 kernels)."""
    d = list(dilations)
    return [BlockSpec((sep(16, 1, d[3 * i]), sep(16, 1, d[3 * i + 1]), sep(16, 1, d[3 * i + 2])))
            for i in range(4)]


def test_receptive_field_of_43_fails():
    # dilations eleven 1s and one 10 -> 1 + 2*(11 + 10) = 43 <= 44
    model = build(stride_one([1] * 11 + [10]))
    assert rules_summary(model)["receptive_field"] == 43
    assert failing(model) == {RF}


def test_receptive_field_of_45_passes():
    # eleven 1s and one 11 -> 1 + 2*(11 + 11) = 45 > 44
    model = build(stride_one([1] * 11 + [11]))
    assert rules_summary(model)["receptive_field"] == 45
    assert failing(model) == set()


def test_small_receptive_field():
    # all stride 1, one d=2 conv: 1 + 2*11 + 4 = 27
    model = build(stride_one([1] * 11 + [2]))
    assert rules_summary(model)["receptive_field"] == 27
    assert failing(model) == {RF}


def test_summary_reports_measurements():
    model = build(base_blocks())
    s = rules_summary(model)
    assert s["params"] == model.num_params()
    assert s["dilated"] == 1          # only C2.conv3
    assert s["depthwise_separable"] == 8
    assert s["gap"] is True
    assert {r["rule"] for r in s["rules"]} == {PARAMS, THREE_CONVS, DILATED, SEPARABLE, GAP, RF}
