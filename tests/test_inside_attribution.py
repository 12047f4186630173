"""Occlusion, integrated gradients and their agreement (cifar_s9.analysis.inside.attribution), and
Grad-CAM for all ten classes (cifar_s9.analysis.inside.why_not), on models whose answers are known."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cifar_s9.analysis import gradcam
from cifar_s9.app import serving as service
from cifar_s9.data.transforms import normalize_uint8
from cifar_s9.analysis.gradcam import hooks_left
from cifar_s9.analysis.inside import InsideError, attribution, why_not
from inside_fixtures import image, net  # noqa: F401,E402  (shared fixtures)

ROWS, COLS = slice(20, 28), slice(4, 12)   # the one patch the "patch reader" looks at


class PatchReader(nn.Module):
    """Class 0's logit is 5 x the mean of one 8x8 patch (rows 20-27, columns 4-11); the others 0."""

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(5.0))

    def forward(self, x):
        logit = self.gain * x[:, :, ROWS, COLS].mean(dim=(1, 2, 3))
        return torch.stack([logit] + [torch.zeros_like(logit)] * 9, dim=1)


class Linear(nn.Module):
    """logit_k = sum over (c, y, x) of w[k, c, y, x] * input: integrated gradients are exact."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(10, 3, 32, 32, generator=torch.Generator().manual_seed(0)))

    def forward(self, x):
        return torch.einsum("kcyx,bcyx->bk", self.w, x)




# ---------------------------------------------------------------- occlusion

@pytest.mark.parametrize("patch,stride", [(8, 4), (4, 2), (6, 5), (8, 8)])
def test_occlusion_peaks_at_the_patch_the_model_reads(patch, stride):
    white = np.full((32, 32, 3), 255, np.uint8)   # occluding (to the mean colour) lowers class 0
    heat = attribution.occlusion(PatchReader(), white, 0, patch, stride)
    assert heat.shape == (32, 32) and heat.max() > 0
    assert heat[ROWS, COLS].max() == heat.max()    # the peak is on the patch
    if (patch, stride) == (8, 4):                   # one window is exactly the patch: the peak is
        peak = np.zeros((32, 32), bool)             # there and nowhere else
        peak[ROWS, COLS] = True
        assert ((heat == heat.max()) <= peak).all()
    assert heat[ROWS, COLS].mean() > 2 * heat.mean()
    assert (heat[:8, 16:] == 0).all()            # patches there never touch the read patch
    assert (heat >= 0).all()                     # the mean colour never helps class 0 here


def test_occlusion_window_count_is_what_captum_evaluates():
    class Counter(PatchReader):
        seen = 0

        def forward(self, x):
            Counter.seen += len(x)
            return super().forward(x)

    for patch, stride, by_hand in [(8, 4, 7 * 7), (8, 5, 6 * 6), (16, 16, 2 * 2), (2, 2, 16 * 16)]:
        Counter.seen = 0
        attribution.occlusion(Counter(), np.zeros((32, 32, 3), np.uint8), 0, patch, stride)
        assert attribution.windows(patch, stride) == by_hand == Counter.seen - 1  # - the original


@pytest.mark.parametrize("patch,stride", [(1, 1), (17, 4), (8, 0), (8, 9), (2, 1), (8.5, 4),
                                          (float("nan"), 4), ("8", None), (True, 4)])
def test_occlusion_limits(patch, stride):
    with pytest.raises(InsideError, match="patch|stride|copies"):
        attribution.check_occlusion(patch, stride)


def test_occlusion_accepts_numeric_strings_and_floats_from_the_ui():
    assert attribution.check_occlusion("8", 4.0) == (8, 4)


# ---------------------------------------------------------------- gradients

def test_integrated_gradients_of_a_linear_model_are_exact():
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    model = Linear()
    x = torch.from_numpy(normalize_uint8(image[None]))[0]
    expected = (model.w[4].detach() * x).sum(0).numpy()      # (x - 0) * w, summed over RGB
    got = attribution.integrated_gradients(model, image, 4, steps=4)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # completeness: the attributions add up to the logit change from the baseline
    assert attribution.logit_change(model, image, 4) == pytest.approx(float(got.sum()), rel=1e-4)
    with pytest.raises(InsideError, match="steps"):
        attribution.integrated_gradients(model, image, 4, steps=1000)


# ---------------------------------------------------------------- agreement

def test_spearman_by_hand():
    assert attribution.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert attribution.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks 1 2 3 4 vs 1 3 2 4: sum d^2 = 2, rho = 1 - 6*2 / (4*15) = 0.8
    assert attribution.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # ties share their mean rank: [0, 0, 1, 2] -> ranks 1.5 1.5 3 4 (Pearson on ranks)
    r = np.array([1.5, 1.5, 3, 4])
    assert attribution.spearman([0, 0, 1, 2], [1, 2, 3, 4]) == pytest.approx(np.corrcoef(r, [1, 2, 3, 4])[0, 1])
    assert np.isnan(attribution.spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(InsideError, match="sizes"):
        attribution.spearman([1, 2], [1, 2, 3])


def test_the_three_maps_for_one_class(net, image):
    result = attribution.attributions(net, image, target=3)
    assert result.target == 3
    assert result.probability == pytest.approx(float(service.probabilities(net, image)[3]), abs=1e-6)
    for name, m in result.maps.items():
        assert m.shape == (32, 32) and np.isfinite(m).all(), name
    np.testing.assert_allclose(result.gradcam, gradcam.explain(net, image, "GradCAM", "C4", 3), atol=1e-6)
    assert set(result.agreement) == {"occlusion vs integrated gradients", "occlusion vs Grad-CAM",
                                     "integrated gradients vs Grad-CAM"}
    assert result.agreement["occlusion vs Grad-CAM"] == pytest.approx(
        attribution.spearman(result.occlusion, result.gradcam))
    pictures = attribution.pictures(image, result)
    assert [c for _, c in pictures] == list(attribution.MAPS)
    assert all(p.shape == (256, 256, 3) and p.dtype == np.uint8 for p, _ in pictures)
    assert "cat" in attribution.summary(result)
    assert result.logit_change == pytest.approx(attribution.logit_change(net, image, 3))
    predicted = attribution.attributions(net, image)
    assert predicted.target == int(service.probabilities(net, image).argmax())
    assert hooks_left(net) == 0 and all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("target", [10, -1, 2.5, "cat", float("nan"), True])
def test_bad_targets(net, image, target):
    with pytest.raises(InsideError, match="target class"):
        attribution.attributions(net, image, target=target)


# ---------------------------------------------------------------- why not this class?

def test_all_class_cams_equal_gradcam_class_by_class(net, image):
    maps = why_not.all_class_cams(net, image)
    assert maps.cams.shape == (10, 32, 32)
    for k in range(10):
        np.testing.assert_allclose(maps.cams[k], gradcam.explain(net, image, "GradCAM", "C4", k), atol=1e-5)
    np.testing.assert_allclose(maps.probabilities, service.probabilities(net, image), atol=1e-6)
    other = why_not.all_class_cams(net, image, "C3.conv2")
    np.testing.assert_allclose(other.cams[7], gradcam.explain(net, image, "GradCAM", "C3.conv2", 7), atol=1e-5)
    assert hooks_left(net) == 0 and all(p.grad is None for p in net.parameters())


def test_why_not_grid(net, image):
    maps = why_not.all_class_cams(net, image)
    grid = why_not.grid(image, maps)
    assert len(grid) == 10 and all(p.shape == (128, 128, 3) for p, _ in grid)
    captions = [c for _, c in grid]
    assert captions[maps.predicted].endswith("(predicted)")
    assert sum(c.endswith("(predicted)") for c in captions) == 1
    assert captions[0].startswith("airplane ") and captions[9].startswith("truck ")


def test_why_not_picture_is_two_rows_of_five(net, image):
    maps = why_not.all_class_cams(net, image)
    picture = why_not.grid_picture(image, maps, size=64)
    tile_h = 64 + 17 + 2                                 # map, then one 17-pixel label line
    assert picture.shape == (2 * tile_h + 6, 5 * 64 + 4 * 6, 3)
    r, c = divmod(maps.predicted, 5)
    corner = picture[r * (tile_h + 6), c * (64 + 6)]
    assert tuple(corner) == (255, 48, 48)                # the predicted class is framed


def test_stride_range_by_hand():
    # at most the patch; at least the smallest stride keeping (ceil((32 - p) / s) + 1)^2 <= 400:
    # p=2: s=1 gives 31^2 = 961, s=2 gives 16^2 = 256; p=4: s=1 gives 29^2 = 841, s=2 gives 15^2
    assert attribution.stride_range(2) == (2, 2)
    assert attribution.stride_range(4) == (2, 4)
    assert attribution.stride_range(8) == (2, 8)    # 8 at stride 1: 25^2 = 625; stride 2: 13^2
    assert attribution.stride_range(13) == (1, 13)  # 20^2 = 400, just allowed
    assert attribution.stride_range(16) == (1, 16)


@pytest.mark.parametrize("patch", range(attribution.PATCH_RANGE[0], attribution.PATCH_RANGE[1] + 1))
def test_every_stride_in_the_slider_range_is_accepted_and_no_other(patch):
    lo, hi = attribution.stride_range(patch)
    for stride in range(attribution.STRIDE_RANGE[0], attribution.STRIDE_RANGE[1] + 1):
        if lo <= stride <= hi:
            assert attribution.check_occlusion(patch, stride) == (patch, stride)
            assert attribution.fit_stride(patch, stride) == stride
        else:
            with pytest.raises(InsideError, match=f"from {lo} to {hi}"):
                attribution.check_occlusion(patch, stride)
            assert lo <= attribution.fit_stride(patch, stride) <= hi


def test_fit_stride_moves_the_default_stride_into_a_small_patch():
    assert attribution.fit_stride(2, attribution.STRIDE) == 2
    assert attribution.fit_stride(16, 4) == 4
    assert attribution.fit_stride(8, "x") == "x"  # not a number: check_occlusion says so


OCC_IG, OCC_CAM, IG_CAM = ("occlusion vs integrated gradients", "occlusion vs Grad-CAM",
                           "integrated gradients vs Grad-CAM")


@pytest.mark.parametrize("agreement, words", [
    ({OCC_IG: -0.07, OCC_CAM: 0.29, IG_CAM: 0.02}, "only occlusion vs Grad-CAM agree somewhat (+0.29)"),
    ({OCC_IG: 0.05, OCC_CAM: -0.1, IG_CAM: 0.15}, "barely agree"),
    ({OCC_IG: 0.8, OCC_CAM: 0.6, IG_CAM: 0.55}, "rank the pixels alike"),
    ({OCC_IG: float("nan"), OCC_CAM: float("nan"), IG_CAM: float("nan")}, "a map is flat"),
])
def test_one_sentence_interprets_the_agreements(agreement, words):
    assert words in attribution.agreement_sentence(agreement)  # the (-0.07, +0.29, +0.02) first


def test_why_not_maps_share_one_scale(net, image):
    maps = why_not.all_class_cams(net, image)
    assert maps.shared.max() == pytest.approx(1.0)  # the strongest evidence of any class is 1
    peaks = maps.shared.reshape(10, -1).max(1)
    assert (peaks < 1 - 1e-6).sum() >= 1  # the others are dimmer, not each stretched to 1
    assert np.allclose(maps.cams.reshape(10, -1).max(1)[peaks > 0], 1, atol=1e-3)  # per-class scaling
    # each shared map is its class's own map up to a factor (same shape of evidence)
    for k in np.flatnonzero(peaks > 0.05):
        a, b = maps.shared[k].ravel(), maps.cams[k].ravel()
        assert np.corrcoef(a, b)[0, 1] > 0.95
