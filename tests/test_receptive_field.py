"""Receptive-field arithmetic against numbers worked out by hand (formulas in receptive_field.py).

    k_eff = d*(k-1) + 1,   r' = r + (k_eff-1)*j,   j' = j*s,   n' = (n + 2p - k_eff)//s + 1
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cifar_s9.model.net import build_model
from cifar_s9.model.receptive_field import (LayerGeometry, effective_kernel, model_geometry,
                                      model_receptive_field, receptive_field_table)


def L(name, k=3, s=1, d=1, p=None):
    return LayerGeometry(name, k, s, d, d * (k - 1) // 2 if p is None else p)


def column(rows, field):
    return [getattr(r, field) for r in rows]


def test_effective_kernel():
    assert effective_kernel(3, 1) == 3
    assert effective_kernel(3, 2) == 5   # taps at -2, 0, +2
    assert effective_kernel(3, 3) == 7
    assert effective_kernel(5, 2) == 9
    assert effective_kernel(1, 4) == 1   # a 1x1 conv sees one pixel whatever the dilation


def test_three_stride_one_convs():
    rows = receptive_field_table([L("a"), L("b"), L("c")], input_size=32)
    # r: 1 -> 1+2*1 = 3 -> 3+2*1 = 5 -> 5+2*1 = 7; jump stays 1; padding 1 keeps 32
    assert column(rows, "receptive_field") == [3, 5, 7]
    assert column(rows, "jump") == [1, 1, 1]
    assert column(rows, "output_size") == [32, 32, 32]
    assert column(rows, "name") == ["a", "b", "c"]


def test_stride_two_then_three_by_three():
    rows = receptive_field_table([L("down", s=2), L("after")], input_size=32)
    # down: r = 1 + 2*1 = 3, j = 1*2 = 2, n = (32 + 2 - 3)//2 + 1 = 16
    # after: r = 3 + 2*2 = 7 (each step now spans 2 input pixels), j = 2, n = 16
    assert column(rows, "receptive_field") == [3, 7]
    assert column(rows, "jump") == [2, 2]
    assert column(rows, "output_size") == [16, 16]


def test_dilated_conv():
    rows = receptive_field_table([L("dil", d=2)], input_size=32)
    # k_eff = 2*(3-1)+1 = 5: r = 1 + 4 = 5; padding 2 keeps (32 + 4 - 5)//1 + 1 = 32
    assert (rows[0].receptive_field, rows[0].jump, rows[0].output_size) == (5, 1, 32)
    rows = receptive_field_table([L("a"), L("dil", d=2)], input_size=32)
    assert rows[-1].receptive_field == 7  # 3 + (5-1)*1
    rows = receptive_field_table([L("dil_s2", s=2, d=2)], input_size=32)
    # (32 + 4 - 5)//2 + 1 = 15 + 1 = 16
    assert (rows[0].receptive_field, rows[0].jump, rows[0].output_size) == (5, 2, 16)


def test_output_size_without_padding_and_odd_inputs():
    rows = receptive_field_table([L("valid", p=0), L("valid2", p=0)], input_size=32)
    assert column(rows, "output_size") == [30, 28]       # 32-3+1, 30-3+1
    rows = receptive_field_table([L("s2", s=2)], input_size=7)
    assert rows[0].output_size == 4                      # (7 + 2 - 3)//2 + 1 = 3 + 1
    assert receptive_field_table([], 32) == []


HAND_TABLES = {  # per conv C1.conv1 .. C4.conv3: receptive field, jump, output size, worked by hand
    # Every block: sep 3x3, sep 3x3, sep 3x3 stride 2 dilation 2 (k_eff 5, padding 2).
    #   C1: r 1+2=3, 3+2=5, 5+4*1=9 (j 1 -> 2);      n 32, 32, (32+4-5)//2+1 = 16
    #   C2: r 9+2*2=13, 17, 17+4*2=25 (j 2 -> 4);    n 16, 16, 8
    #   C3: r 25+2*4=33, 41, 41+4*4=57 (j 4 -> 8);   n 8, 8, 4
    #   C4: r 57+2*8=73, 89, 89+4*8=121 (j 8 -> 16); n 4, 4, 2
    "seed": ([3, 5, 9, 13, 17, 25, 33, 41, 57, 73, 89, 121],
             [1, 1, 2, 2, 2, 4, 4, 4, 8, 8, 8, 16],
             [32, 32, 16, 16, 16, 8, 8, 8, 4, 4, 4, 2]),
    # C1: three standard 3x3, stride 1:                 r 3, 5, 7;            j 1
    # C2: 3x3 stride 2: 7+2*1 = 9 (j 2); sep 3x3: 9+2*2 = 13; sep d=2 (k_eff 5): 13+4*2 = 21
    # C3: sep stride 2: 21+2*2 = 25 (j 4); 25+2*4 = 33; 33+2*4 = 41
    # C4: sep stride 2: 41+2*4 = 49 (j 8); 49+2*8 = 65; 65+2*8 = 81
    "default": ([3, 5, 7, 9, 13, 21, 25, 33, 41, 49, 65, 81],
                [1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 8, 8],
                [32, 32, 32, 16, 16, 16, 8, 8, 8, 4, 4, 4]),
}


@pytest.mark.parametrize("name", sorted(HAND_TABLES))
def test_preset_table_by_hand(name):
    receptive_fields, jumps, output_sizes = HAND_TABLES[name]
    table, rf = model_receptive_field(build_model(name))
    assert rf == receptive_fields[-1]
    assert column(table, "receptive_field") == receptive_fields
    assert column(table, "jump") == jumps
    assert column(table, "output_size") == output_sizes


def test_seed_preset_dilates_each_blocks_third_conv():
    assert column(model_receptive_field(build_model("seed"))[0], "dilation") == [1, 1, 2] * 4


def test_table_output_sizes_match_the_real_network(preset):
    model = build_model(preset).eval()
    shapes = []
    hooks = [unit.register_forward_hook(lambda m, i, o: shapes.append(o.shape[-1]))
             for block in model.blocks for unit in (block.conv1, block.conv2, block.conv3)]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 32, 32))
    finally:
        for h in hooks:
            h.remove()
    table, _ = model_receptive_field(model)
    assert column(table, "output_size") == shapes
    assert column(table, "name") == [f"C{i}.conv{j}" for i in range(1, 5) for j in range(1, 4)]


def test_geometry_reads_the_depthwise_kernel_of_separable_convs():
    geo = model_geometry(build_model("seed"))
    assert len(geo) == 12
    assert all(g.kernel == 3 for g in geo)
    assert [g.stride for g in geo] == [1, 1, 2] * 4
    assert [g.padding for g in geo] == [1, 1, 2] * 4


def test_formula_agrees_with_a_gradient_measurement():
    # Measure the receptive field directly: with all-ones weights and no nonlinearity, the
    # gradient of one interior output pixel is nonzero exactly on the pixels it can see.
    # 3x3 s1 (r 3, j 1), 3x3 s2 (r 3+2 = 5, j 2), 3x3 d2 (k_eff 5: r 5+4*2 = 13)
    layers = [L("a"), L("b", s=2), L("c", d=2)]
    convs = nn.Sequential(*[nn.Conv2d(1, 1, g.kernel, g.stride, g.padding, g.dilation, bias=False)
                            for g in layers])
    for c in convs:
        nn.init.ones_(c.weight)
    x = torch.zeros(1, 1, 64, 64, requires_grad=True)
    y = convs(x)
    y[0, 0, y.shape[-2] // 2, y.shape[-1] // 2].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    cols = x.grad[0, 0].abs().sum(0).nonzero().flatten()
    measured = int(rows.max() - rows.min() + 1)
    assert measured == int(cols.max() - cols.min() + 1)
    assert receptive_field_table(layers, 64)[-1].receptive_field == measured == 13
    assert receptive_field_table(layers, 64)[-1].output_size == y.shape[-1]


def test_highres_preset_table_by_hand():
    # C1: 3, +4 (5x5), +4 (5x5); C2: stride 2 +2, then jump 2: 5x5 +8, 3x3 d2 (k_eff 5) +8;
    # C3 (no stride): +4, 5x5 +8, 3x3 d3 (k_eff 7) +12; C4: stride 2 +4, then jump 4: +8, +8
    table, rf = model_receptive_field(build_model("highres"))
    assert [r.receptive_field for r in table] == [3, 7, 11, 13, 21, 29, 33, 41, 53, 57, 65, 73]
    assert [r.output_size for r in table] == [32] * 3 + [16] * 6 + [8] * 3
    assert rf == 73


def test_highres_parameter_count_by_hand():
    # standard 3x3 conv: 9*cin*cout; separable kxk: k*k*cin + cin*cout; BatchNorm: 2 per channel
    c1 = 9 * 3 * 48 + 2 * (25 * 48 + 48 * 48)
    c2 = (9 * 48 + 48 * 96) + (25 * 96 + 96 * 96) + (9 * 96 + 96 * 96)
    c3 = (9 * 96 + 96 * 128) + (25 * 128 + 128 * 128) + (9 * 128 + 128 * 128)
    c4 = (9 * 128 + 128 * 176) + 2 * (9 * 176 + 176 * 176)
    bn = 2 * 3 * (48 + 96 + 128 + 176)
    head = 176 * 10 + 10
    assert c1 + c2 + c3 + c4 + bn + head == 178_570 == build_model("highres").num_params()


def test_start_offset_by_hand():
    # c' = c + ((k_eff-1)/2 - p) * j, with the jump before the layer
    rows = receptive_field_table([L("valid", p=0), L("valid2", p=0)], input_size=32)
    assert column(rows, "start") == [1.0, 2.0]      # 0 + (1-0)*1, then 1 + (1-0)*1
    rows = receptive_field_table([L("s2", s=2, p=0), L("after", p=0), L("d2", d=2, p=1)], 32)
    # s2: 0 + 1*1 = 1 (j 1 -> 2); after: 1 + 1*2 = 3; d2 (k_eff 5): 3 + (2-1)*2 = 5
    assert column(rows, "start") == [1.0, 3.0, 5.0]
    for preset in ("default", "seed", "highres"):  # "same" padding everywhere: unit i is centred on i * jump
        assert set(column(model_receptive_field(build_model(preset))[0], "start")) == {0.0}


def test_start_offset_agrees_with_a_gradient_measurement():
    # Unpadded convs shift the centre of unit (i, i); the gradient shows where it really looks.
    layers = [L("a", p=0), L("b", s=2, p=0), L("c", d=2, p=1)]
    convs = nn.Sequential(*[nn.Conv2d(1, 1, g.kernel, g.stride, g.padding, g.dilation, bias=False)
                            for g in layers])
    for c in convs:
        nn.init.ones_(c.weight)
    x = torch.zeros(1, 1, 64, 64, requires_grad=True)
    i = 7
    convs(x)[0, 0, i, i].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero().flatten()
    row = receptive_field_table(layers, 64)[-1]
    half = (row.receptive_field - 1) // 2
    centre = row.start + i * row.jump
    assert (int(rows.min()), int(rows.max())) == (centre - half, centre + half)
