"""Every registered preset (the `preset` fixture, conftest.py): forward, backward, parameter budget,
rules; plus each design's parameter count by hand."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cifar_s9.model.layers import ConvUnit, DepthwiseSeparableConv2d, make_conv
from cifar_s9.model.net import (ALL_PRESETS, PRESETS, TEACHER_PRESETS, BlockSpec, ConvSpec, ModelConfig, Net,
                            build_model, default_config, get_config, seed_config)
from cifar_s9.model.rules import check_rules


def test_registry_holds_both_designs_and_keeps_teachers_apart():
    assert {"default", "seed"} <= set(PRESETS) and "wide" in TEACHER_PRESETS
    assert not set(PRESETS) & set(TEACHER_PRESETS)
    assert set(ALL_PRESETS) == set(PRESETS) | set(TEACHER_PRESETS)


def test_forward_shape(preset):
    torch.manual_seed(0)
    model = build_model(preset).eval()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_backward_reaches_every_parameter(preset):
    torch.manual_seed(0)
    model = build_model(preset).train()
    loss = nn.functional.cross_entropy(model(torch.randn(2, 3, 32, 32)), torch.tensor([1, 7]))
    loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert missing == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    # the zero-initialised residual scales must see a gradient at once: a ReLU between them and
    # the sum once blocked it, and the branches never trained
    gammas = [bn.weight for block in model.blocks if block.residual
              for bn in block.conv3 if isinstance(bn, nn.BatchNorm2d)]
    assert all(torch.count_nonzero(g) == 0 and g.grad.abs().sum() > 0 for g in gammas)


def test_every_weight_learns_within_a_few_steps(preset):
    """After a few SGD steps every conv weight gets a non-zero gradient: no dead branch."""
    torch.manual_seed(0)
    model = build_model(preset).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))  # small: the wide teacher is 7.8M
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    dead = [name for name, p in model.named_parameters() if p.grad.abs().sum() == 0]
    assert dead == []


def test_channels_last_input_gives_the_same_logits(preset):
    torch.manual_seed(0)
    model = build_model(preset).eval()
    x = torch.randn(2, 3, 32, 32)
    cl = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(cl, model(x), atol=1e-5, rtol=1e-5)


def test_students_are_under_the_parameter_budget_and_teachers_are_not(preset):
    assert (build_model(preset).num_params() < 200_000) == (preset in PRESETS)


def test_every_rule_passes_for_students(preset):
    failed = [r.rule for r in check_rules(build_model(preset)) if not r.passed]
    if preset in PRESETS:
        assert failed == []
    else:  # a teacher breaks the budget on purpose, which is why the app never offers it
        assert "parameters" in failed


def test_config_round_trips_through_a_dict(preset):
    config = get_config(preset)
    assert ModelConfig.from_dict(config.to_dict()) == config
    import json
    assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_default_preset_has_exactly_the_hand_counted_parameters():
    # Standard unit (no conv bias): in*out*9 + BatchNorm 2*out.
    # Separable unit: depthwise in*9 + pointwise in*out + BatchNorm 2*out.
    #   C1 std   3->32: 864+64 = 928;        32->32: 9216+64 = 9280 (x2)          -> 19,488
    #   C2 std  32->64: 18432+128 = 18560;   sep 64->64: 576+4096+128 = 4800 (x2) -> 28,160
    #   C3 sep  64->128: 576+8192+256 = 9024; 128->128: 1152+16384+256 = 17792 (x2) -> 44,608
    #   C4 sep 128->192: 1152+24576+384 = 26112; 192->192: 1728+36864+384 = 38976 (x2) -> 104,064
    #   O  1x1 conv 192->10 with bias: 1920+10                                 -> 1,930
    #   total 19,488 + 28,160 + 44,608 + 104,064 + 1,930 = 198,250
    model = build_model("default")
    assert model.num_params() == 198_250
    per_block = [sum(p.numel() for p in b.parameters()) for b in model.blocks]
    assert per_block == [19_488, 28_160, 44_608, 104_064]


def test_seed_preset_has_exactly_the_hand_counted_parameters():
    # Separable unit (no conv bias): depthwise in*9 + pointwise in*out + BatchNorm 2*out.
    #   C1  3->32: 27+96+64 = 187;       32->32: 288+1024+64 = 1376 (x2)        -> 2,939
    #   C2 32->64: 288+2048+128 = 2464;  64->64: 576+4096+128 = 4800 (x2)       -> 12,064
    #   C3 64->128: 576+8192+256 = 9024; 128->128: 1152+16384+256 = 17792 (x2) -> 44,608
    #   C4 128->224: 1152+28672+448 = 30272; 224->224: 2016+50176+448 = 52640 (x2) -> 135,552
    #   O  1x1 conv 224->10 with bias: 2240+10                                  -> 2,250
    #   total 2,939 + 12,064 + 44,608 + 135,552 + 2,250 = 197,413
    assert build_model("seed").num_params() == 197_413


def test_wide_teacher_has_the_hand_counted_parameters_and_is_no_student():
    # Standard unit (no conv bias): in*out*9 + BatchNorm 2*out; head: linear 512->10 with bias.
    #   C1   3->64: 1728+128;   64->64: 36864+128 (x2)                     -> 75,840
    #   C2  64->128: 73728+256; 128->128: 147456+256 (x2)                  -> 369,408
    #   C3 128->256: 294912+512; 256->256: 589824+512 (x2)                 -> 1,476,096
    #   C4 256->512: 1179648+1024; 512->512: 2359296+1024 (x2)             -> 5,901,312
    #   O  5120+10                                                          -> 5,130
    assert build_model("wide").num_params() == 7_827_786
    failed = {r.rule for r in check_rules(build_model("wide")) if not r.passed}
    assert failed == {"parameters", "depthwise-separable convolution"}
    assert "wide" not in PRESETS  # the app offers students only


def test_seed_preset_uses_twelve_separable_convs():
    model = build_model("seed")
    units = [m for m in model.modules() if isinstance(m, ConvUnit)]
    assert len(units) == 12
    assert all(isinstance(u.conv, DepthwiseSeparableConv2d) for u in units)
    assert sum(isinstance(m, DepthwiseSeparableConv2d) for m in model.modules()) == 12
    # each block's third conv is the stride-2, dilation-2 one
    assert [(u.stride, u.dilation) for u in units] == [(1, 1), (1, 1), (2, 2)] * 4
    # order conv -> ReLU -> BN -> Dropout
    assert [type(m) for m in units[0]] == [DepthwiseSeparableConv2d, nn.ReLU, nn.BatchNorm2d, nn.Dropout]


def test_default_preset_is_residual_with_conv_bn_act():
    model = build_model("default")
    assert all(block.residual for block in model.blocks)
    assert [type(m) for m in model.blocks[0].conv1] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    # residual branches start at zero: the block initially passes conv1's output through
    for block in model.blocks:
        bn = next(m for m in block.conv3 if isinstance(m, nn.BatchNorm2d))
        assert torch.count_nonzero(bn.weight) == 0
        # the branch ends at its BatchNorm; the ReLU follows the sum
        assert [type(m) for m in block.conv3][1:] == [nn.BatchNorm2d]
        assert isinstance(block.post_sum, nn.ReLU)


def test_residual_block_output_is_relu_of_the_sum():
    torch.manual_seed(0)
    block = build_model("default").blocks[1].eval()
    x = torch.randn(1, 32, 32, 32)
    with torch.no_grad():
        for m in block.modules():  # a non-zero branch so the sum matters
            if isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.uniform_(m.bias, -0.5, 0.5)
        a = block.conv1(x)
        expected = torch.relu(a + block.conv3(block.conv2(a)))
        torch.testing.assert_close(block(x), expected)
        assert (block(x) >= 0).all() and (block.conv3(block.conv2(a)) < 0).any()


def test_separable_conv_parameters_by_hand():
    conv = DepthwiseSeparableConv2d(4, 8)
    # depthwise 4 filters of 3x3 = 36, pointwise 4*8 = 32, no bias
    assert sum(p.numel() for p in conv.parameters()) == 68
    assert conv(torch.zeros(1, 4, 10, 10)).shape == (1, 8, 10, 10)
    dilated = DepthwiseSeparableConv2d(4, 8, stride=2, dilation=2)
    assert dilated.depthwise.padding == (2, 2)
    assert dilated(torch.zeros(1, 4, 10, 10)).shape == (1, 8, 5, 5)


def test_make_conv_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown conv kind"):
        make_conv("depthwise", 3, 8, 1, 1)


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="default"):
        get_config("resnet50")


def test_residual_block_with_mismatched_shapes_is_refused():
    bad = ModelConfig(blocks=(BlockSpec((ConvSpec(8), ConvSpec(16), ConvSpec(8)), residual=True),))
    with pytest.raises(ValueError, match="residual"):
        Net(bad)


def test_build_model_accepts_a_config():
    assert build_model(seed_config()).config == seed_config()
    assert build_model().config == default_config()
