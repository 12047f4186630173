"""Classify's two designs side by side (issue 27.4), as plain functions: which design goes beside
the visitor's, what each column holds (the same answers as Classify's own code paths), what it
costs (one forward and one Grad-CAM per column), that neither shared network changes, and that
every bad setting is refused before a network runs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cifar_s9.analysis import gradcam
from cifar_s9.analysis.gradcam import hooks_left
from cifar_s9.app import compare as designs
from cifar_s9.app import texts
from cifar_s9.app.compare import CamSettings, compare, partner
from cifar_s9.app.serving import ActiveModel, probabilities, top_k
from cifar_s9.errors import UserError
from cifar_s9.model.net import build_model

CARD = {"accuracy": {"test": {"plain": 0.9032, "n": 10_000, "data": "jpeg test"}}}
SEED_CARD = {"accuracy": {"test": {"plain": 0.8339, "n": 10_000, "data": "jpeg test"}}}


def served(preset: str, seed: int, key: str, source: str, card: dict) -> ActiveModel:
    torch.manual_seed(seed)
    net = build_model(preset).eval()
    for p in net.parameters():
        p.requires_grad_(True)  # as serving keeps them (Grad-CAM differentiates a copy)
    return ActiveModel(net, card, source, key, digest=None if key == "shipped" else key)


@pytest.fixture(scope="module")
def nets():
    return {"shipped": served("default", 0, "shipped", "default.safetensors", CARD),
            "reference": served("seed", 1, "ref" * 8, "reference design (seed.safetensors)", SEED_CARD),
            "upload": served("default", 2, "up" * 12, "upload mine.safetensors", {})}


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)


def snapshot(active: ActiveModel) -> dict:
    net = active.model
    return {"weights": {k: v.clone() for k, v in net.state_dict().items()}, "training": net.training,
            "grad": [p.requires_grad for p in net.parameters()]}


def test_the_reference_goes_beside_any_other_model_and_the_shipped_beside_the_reference(nets):
    shipped, reference, upload = nets["shipped"], nets["reference"], nets["upload"]
    assert partner(shipped, reference, shipped) == (designs.REFERENCE, reference)
    assert partner(upload, reference, shipped) == (designs.REFERENCE, reference)
    # the session chose the reference design: the same key, or the same weights under another key
    assert partner(reference, reference, shipped) == (designs.SHIPPED, shipped)
    twin = ActiveModel(reference.model, reference.card, "my copy", "other-key", digest=reference.digest)
    assert partner(twin, reference, shipped) == (designs.SHIPPED, shipped)
    same = ActiveModel(reference.model, reference.card, "seed.safetensors", "shipped", digest=reference.digest)
    with pytest.raises(UserError, match="no other design"):  # an app started with --weights seed
        partner(reference, reference, same)


def test_each_column_is_classifys_own_answer_for_its_network(nets, image):
    cam = CamSettings("GradCAM++", "C3.conv2", 3, 0.3)
    result = compare(nets["upload"], nets["reference"], nets["shipped"], image, 4, cam)
    for column, active in ((result.yours, nets["upload"]), (result.other, nets["reference"])):
        assert column.top == top_k(probabilities(active.model, image), 4) and len(column.top) == 4
        want = gradcam.picture(active.model, image, "GradCAM++", "C3.conv2", 3, 0.3)
        assert column.cam.shape == want.shape == (256, 312, 3)
        assert np.abs(column.cam.astype(int) - want).max() <= 1  # rounding of the blend at most
    assert result.yours.top != result.other.top  # two different networks, two answers
    assert "GradCAM++ at `C3.conv2` for class **cat**" in result.note
    assert "already uses the reference" not in result.note


def test_one_forward_and_one_grad_cam_per_column_and_neither_network_changes(nets, image, monkeypatch):
    before = {name: snapshot(a) for name, a in nets.items()}
    forwards, cams = [], []
    real_probabilities, real_picture = designs.probabilities, gradcam.picture
    monkeypatch.setattr(designs, "probabilities", lambda m, x: forwards.append(m) or real_probabilities(m, x))
    monkeypatch.setattr(gradcam, "picture", lambda m, *a: cams.append(m) or real_picture(m, *a))
    compare(nets["shipped"], nets["reference"], nets["shipped"], image, 3, CamSettings())
    assert forwards == cams == [nets["shipped"].model, nets["reference"].model]
    for name, active in nets.items():
        after = snapshot(active)
        assert after["training"] == before[name]["training"] and after["grad"] == before[name]["grad"]
        assert all(torch.equal(after["weights"][k], v) for k, v in before[name]["weights"].items()), name
        assert hooks_left(active.model) == 0 and all(p.grad is None for p in active.model.parameters())


def test_titles_name_each_model_with_the_apps_accuracy_else_its_card(nets, image):
    measured = {"shipped": (0.9032, 10_000, True)}
    result = compare(nets["shipped"], nets["reference"], nets["shipped"], image, 3, CamSettings(),
                     measured=lambda active: measured.get(active.key))
    assert result.yours.title == ("**Your model**: default.safetensors\n\n"
                                  "90.32% on the 10,000 test images")
    assert result.yours.title.endswith(texts.banner("x", {}, None, True, measured["shipped"])
                                       .rsplit(": ", 1)[1].rstrip("."))  # the banner's own words
    assert result.other.title.startswith("**Reference design**: reference design (seed.safetensors)\n\n"
                                         "test accuracy 83.39% on")
    assert result.other.title.endswith("(its model card)")
    flipped = compare(nets["reference"], nets["reference"], nets["shipped"], image, 3, CamSettings())
    assert flipped.other.title.startswith("**Shipped model**: default.safetensors")
    assert flipped.note.startswith("Your session already uses the reference design, so it is set "
                                   "beside the **shipped model**.")


def test_a_model_without_an_accuracy_or_with_a_warning_says_so(nets):
    assert texts.design_title("Your model", "upload x_y.safetensors", {}) == \
        "**Your model**: upload x\\_y.safetensors"  # escaped: shown literally
    warned = texts.design_title("Your model", "run 3", CARD, warning="run 3 is no longer available")
    assert warned.endswith("⚠️ run 3 is no longer available") and "90.32" not in warned
    assert texts.accuracy_words({"accuracy": ["not", "a", "dict"]}) is None  # a stranger's card


@pytest.mark.parametrize("values, match", [
    (dict(method="Nope"), "unknown Grad-CAM method"), (dict(method=["GradCAM"]), "unknown Grad-CAM method"),
    (dict(layer={"x": 1}), "target layer"), (dict(layer="C4" * 100), "target layer"),
    (dict(target=[1]), "target class"), (dict(target=True), "target class"), (dict(target=99), "class index"),
    (dict(target="zebra"), "unknown class"), (dict(opacity="half"), "opacity must be a number"),
    (dict(opacity=float("nan")), "finite"), (dict(opacity=1e308), r"opacity must be in \[0, 1\]"),
])
def test_bad_settings_are_refused_with_a_sentence(values, match):
    raw = dict(method=None, layer=None, target=None, opacity=None) | values
    with pytest.raises(UserError, match=match):
        CamSettings.parse(**raw)


def test_none_means_the_default_and_names_are_read(nets):
    assert CamSettings.parse(None, None, None, None) == CamSettings()
    assert CamSettings.parse("EigenCAM", "C2", "dog", 1).target == 5
    assert CamSettings.parse("EigenCAM", "C2", "predicted", 0).class_agnostic


@pytest.mark.parametrize("k, layer, bad_image, match", [
    (0, "C4", False, "top-k"), (10**9, "C4", False, "top-k"), ("3", "C9", False, "unknown layer"),
    (3, "C4.conv7", False, "unknown layer"), (3, "C4", True, "32x32 RGB"),
])
def test_nothing_runs_before_every_value_is_checked(nets, image, monkeypatch, k, layer, bad_image, match):
    ran = []
    monkeypatch.setattr(designs, "probabilities", lambda *a: ran.append("forward"))
    monkeypatch.setattr(gradcam, "picture", lambda *a: ran.append("cam"))
    picture = np.zeros((64, 64, 3), np.uint8) if bad_image else image
    with pytest.raises(UserError, match=match):
        compare(nets["shipped"], nets["reference"], nets["shipped"], picture, k, CamSettings(layer=layer))
    assert ran == []
