"""Receptive fields on the image (cifar_s9.analysis.inside.fields): boxes by hand, the "most of the
gradient" square by hand, and the effective field of a positive network against the theory."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cifar_s9.analysis.gradcam import hooks_left, layer_names
from cifar_s9.analysis.inside import InsideError, fields
from cifar_s9.model.net import PRESETS, build_model


@pytest.fixture(scope="module")
def default_net():
    return build_model("default").eval()


# ---------------------------------------------------------------- theory, by hand

def test_boxes_by_hand(default_net):
    # default: C1.conv1 r 3, j 1; C2 (= C2.conv3) r 21, j 2; C4 r 81, j 8; start 0 everywhere
    f = fields.unit_field(default_net, "C1.conv1", 5, 7)
    assert (f.size, f.centre, f.box, f.clipped, f.padding_pixels) == (3, (5.0, 7.0), (4, 6, 6, 8), (4, 6, 6, 8), 0)
    f = fields.unit_field(default_net, "C2", 1, 2)        # centre (2, 4), half 10
    assert f.box == (-8, -6, 12, 14) and f.clipped == (0, 0, 12, 14)
    assert f.on_image == (13, 15) and f.padding_pixels == 21 * 21 - 13 * 15
    f = fields.unit_field(default_net, "C4", 0, 0)        # centre (0, 0), half 40
    assert f.box == (-40, -40, 40, 40) and f.clipped == (0, 0, 31, 31)
    f = fields.unit_field(default_net, "C4.conv1", 3, 3)  # r 49, j 8: centre 24, half 24
    assert (f.size, f.box, f.clipped) == (49, (0, 0, 48, 48), (0, 0, 31, 31))


def test_block_outputs_see_what_their_last_conv_sees():
    for preset in PRESETS:
        geo = fields.layer_geometry(build_model(preset))
        assert set(geo) == set(layer_names(build_model(preset)))
        for i in range(1, 5):
            assert geo[f"C{i}"] == geo[f"C{i}.conv3"]
    geo = fields.layer_geometry(build_model("seed"))
    assert geo["C4"].receptive_field == 121 and geo["C4"].jump == 16


@pytest.mark.parametrize("bad", [("C9", 0, 0), ("C4", 4, 0), ("C4", 0, -1), ("C1.conv1", 32, 0),
                                 ("C4", float("nan"), 0), ("C4", 1.5, 0), ("C4", "two", 0),
                                 ("C4", True, 0), ("C4", None, 0), (4, 0, 0), ("C4", 10**400, 0)])
def test_bad_units_are_clear_errors(default_net, bad):
    layer, y, x = bad
    with pytest.raises(InsideError, match="layer|row|column"):
        fields.unit_field(default_net, layer, y, x)


def test_central_square_by_hand():
    m = np.zeros((32, 32))
    m[10, 12] = 1.0
    assert fields.central_square(m, (10, 12)) == 1            # all the mass on the centre
    m = np.zeros((32, 32))
    m[8:13, 10:15] = 1.0                                      # uniform 5x5 around (10, 12)
    assert fields.central_square(m, (10, 12)) == 5            # 3x3 holds 9/25 = 36%, 5x5 100%
    assert fields.central_square(m, (10, 12), 0.36) == 3      # exactly 9/25
    assert fields.central_square(m, (10, 12), 0.37) == 5
    m = np.zeros((32, 32))
    m[0, 0], m[0, 6] = 3.0, 1.0                               # centre in the corner: square cut
    assert fields.central_square(m, (0, 0), 0.75) == 1        # 3/4 on the centre pixel
    assert fields.central_square(m, (0, 0), 0.8) == 13        # (0, 6) needs half-width 6
    assert fields.central_square(np.zeros((32, 32)), (3, 3)) is None


def test_words(default_net):
    f = fields.unit_field(default_net, "C4", 1, 2)
    mass = np.zeros((32, 32))
    mass[1:16, 9:24] = 1.0                                    # uniform 15x15 around (8, 16)
    text = fields.describe(f, mass)
    assert "sees 81x81 pixels, more than the 32x32 image" in text
    assert "84% is zero padding" in text                      # 1 - 1024/6561 = 0.844
    assert "50% of its gradient sits in the central 11x11 square" in text  # 121/225 >= 50%, 81/225 not
    assert "ReLU is off" in fields.describe(f, np.zeros((32, 32)))
    small = fields.describe(fields.unit_field(default_net, "C1.conv1", 5, 5), mass)
    assert "sees 3x3 pixels." in small and "padding" not in small


# ---------------------------------------------------------------- the effective field

def positive(model: nn.Module) -> nn.Module:
    """Positive weights (about 1/fan_in, so values stay near 1), BatchNorm as the identity, eval
    mode: with a positive input every ReLU passes, so the gradient of a unit is positive exactly
    on the pixels some path connects it to."""
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.uniform_(0.5 / fan_in, 1.5 / fan_in)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0), m.bias.zero_(), m.running_mean.zero_(), m.running_var.fill_(1.0)
    return model.eval()


def support(grad: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(grad.sum(1))[0], np.nonzero(grad.sum(0))[0]
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


@pytest.mark.parametrize("preset", list(PRESETS))
def test_gradient_support_is_the_theoretical_field(preset):
    model = positive(build_model(preset))
    geo = fields.layer_geometry(model)
    # large enough that the deepest centre unit's box lies inside the image, uncut
    rf, jump = max(r.receptive_field for r in geo.values()), max(r.jump for r in geo.values())
    size = 32 * -(-(rf + 2 * jump) // 32)
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1)) + 0.5
    geo = fields.layer_geometry(model, size)
    for layer in layer_names(model):
        centre = geo[layer].output_size // 2
        field = fields.unit_field(model, layer, centre, centre, size)
        assert field.box == field.clipped, f"{layer}: test input too small"
        grad = fields.input_gradient(model, x, layer, centre, centre)
        assert support(grad) == field.box, layer
        top, left, bottom, right = field.box
        assert (grad[top:bottom + 1, left:right + 1] > 0).all(), f"{layer}: holes in the field"
        assert bottom - top + 1 == geo[layer].receptive_field
        # a corner unit: the support is the box cut at the border
        corner = fields.unit_field(model, layer, 0, 0, size)
        assert support(fields.input_gradient(model, x, layer, 0, 0)) == corner.clipped, layer
    assert hooks_left(model) == 0


def test_effective_field_of_one_image(default_net):
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    field, mass = fields.effective_field(default_net, image, "C2.conv2", 3, 4, channel=5)
    assert mass.shape == (32, 32) and mass.dtype == np.float32 and (mass >= 0).all()
    top, left, bottom, right = field.clipped
    outside = mass.copy()
    outside[top:bottom + 1, left:right + 1] = 0
    assert not outside.any()                                  # nothing outside the theoretical box
    summed = fields.effective_field(default_net, image, "C2.conv2", 3, 4)[1]
    assert summed.shape == (32, 32)
    with pytest.raises(InsideError, match="channel"):
        fields.effective_field(default_net, image, "C2.conv2", 3, 4, channel=64)
    assert hooks_left(default_net) == 0
    assert all(p.grad is None for p in default_net.parameters())


def test_pictures(default_net):
    image = np.full((32, 32, 3), 200, np.uint8)
    f = fields.unit_field(default_net, "C4", 0, 0)            # box -40..40: canvas spans -40..40
    pic = fields.field_picture(image, f, size=256)
    scale = -(-256 // 81)                                     # 4: the canvas is at least 256 wide
    assert pic.shape == (81 * scale, 81 * scale, 3)
    assert tuple(pic[0, 0]) == (255, 48, 48)                  # the box outline at the corner
    padding = pic[10 * scale:30 * scale, 10 * scale:30 * scale].reshape(-1, 3)
    assert {tuple(p) for p in padding} == {(150, 150, 150), (32, 32, 32)}  # hatched
    assert tuple(pic[(40 + 10) * scale, (40 + 20) * scale]) == (200, 200, 200)  # the image
    mass = np.zeros((32, 32), np.float32)
    mass[0, 0] = 1.0
    g = fields.gradient_picture(mass, f, size=256)
    assert g.shape == (256, 256, 3)
