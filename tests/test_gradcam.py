import threading

import numpy as np
import pytest
import torch

from cifar_s9.analysis import gradcam, private
from cifar_s9.data.transforms import normalize_uint8
from cifar_s9.app import serving as service
from cifar_s9.analysis.gradcam import ExplainError, explain, hooks_left, layer_names, overlay, target_layer
from inside_fixtures import image, net  # noqa: F401,E402  (shared fixtures)


def test_layer_names_follow_the_architecture(model):
    names = layer_names(model)
    assert names[:4] == ["C1", "C1.conv1", "C1.conv2", "C1.conv3"] and names[-1] == "C4.conv3"
    assert len(names) == 16
    assert target_layer(model, "C2") is model.blocks[1]
    assert target_layer(model, "C3.conv2") is model.blocks[2].conv2


@pytest.mark.parametrize("bad", ["C0", "C5", "C1.conv4", "conv1", "C1.conv1.0", ""])
def test_unknown_layer_names_are_refused(model, bad):
    with pytest.raises(ExplainError, match="unknown layer"):
        target_layer(model, bad)


@pytest.mark.parametrize("method", list(gradcam.METHODS))
@pytest.mark.parametrize("layer", ["C4", "C2.conv1", "C1.conv3"])
def test_every_method_and_layer_gives_a_clean_heatmap(net, image, method, layer):
    h = explain(net, image, method, layer, target_class=3)
    assert h.shape == (32, 32) and h.dtype == np.float32
    assert np.isfinite(h).all() and 0 <= h.min() and h.max() <= 1
    assert hooks_left(net) == 0
    assert all(p.grad is None for p in net.parameters())



def library_heatmaps(net, images, method, layer, target_class):
    """pytorch-grad-cam on a plain copy of `net`, the whole graph recorded (no `graph_from`)."""
    import copy
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    twin = copy.deepcopy(net)
    with torch.enable_grad(), getattr(pytorch_grad_cam, gradcam.METHODS[method])(
            model=twin, target_layers=[target_layer(twin, layer)]) as cam:
        return np.asarray(cam(input_tensor=torch.from_numpy(normalize_uint8(images)),
                              targets=[ClassifierOutputTarget(target_class)] * len(images)))


@pytest.mark.parametrize("method", list(gradcam.METHODS))
@pytest.mark.parametrize("layer", ["C4", "C4.conv3", "C2.conv1", "C1"])
def test_the_graph_cut_below_the_layer_gives_the_librarys_own_heatmaps(net, method, layer):
    """explain_many records autograd only from the target layer up (`graph_from`): the heatmaps
    are the ones the library computes over the whole graph, bit for bit, and the network's
    gradient flags come back as they were."""
    images = np.random.default_rng(3).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    ours = gradcam.explain_many(net, images, method, layer, targets=[3, 3, 3])
    np.testing.assert_array_equal(ours, np.nan_to_num(library_heatmaps(net, images, method, layer, 3)))
    with private.borrowed(net) as twin:
        with gradcam.graph_from(twin, target_layer(twin, layer)):
            assert not any(p.requires_grad for p in twin.parameters())
        assert all(p.requires_grad for p in twin.parameters()) and hooks_left(twin) == 0

def test_conv_unit_target_is_post_activation(net, image):
    seen = []
    unit = target_layer(net, "C2.conv2")
    handle = unit.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    with torch.no_grad():
        net(torch.from_numpy(normalize_uint8(image[None])))
    handle.remove()
    assert seen and (seen[0] >= 0).all()  # the unit ends with its ReLU (conv-bn-act order)


def test_explain_never_hooks_the_network_it_is_given(net, image):
    """The served network is only read (issue 26.1): a hook on it would fire on other visitors'
    passes. A hook placed on it here sees no forward pass during explain."""
    seen = []
    handle = target_layer(net, "C4").register_forward_hook(lambda m, i, o: seen.append(1))
    try:
        explain(net, image, "GradCAM", "C4")
    finally:
        handle.remove()
    assert seen == []


def test_target_class_changes_the_map(net, image):
    maps = [explain(net, image, "GradCAM", "C3", c) for c in range(10)]
    assert any(not np.allclose(maps[0], m) for m in maps[1:])
    predicted = explain(net, image, "GradCAM", "C3", None)
    top = int(service.probabilities(net, image).argmax())
    assert np.allclose(predicted, maps[top], atol=1e-5)


def test_works_under_no_grad_and_keeps_mode(net, image):
    net.train()
    try:
        with torch.no_grad():
            h = explain(net, image)
        assert h.max() > 0
        assert net.training  # mode restored
    finally:
        net.eval()


def test_hooks_removed_when_the_cam_fails(net, image, monkeypatch):
    from pytorch_grad_cam import GradCAM

    class Boom(GradCAM):
        def forward(self, *a, **k):
            raise RuntimeError("boom")

    monkeypatch.setitem(gradcam.METHODS, "Boom", Boom)
    with pytest.raises(RuntimeError, match="boom"):
        explain(net, image, "Boom")
    assert hooks_left(net) == 0
    assert all(hooks_left(twin) == 0 for twin in private._IDLE.get(net, []))  # the copies too


def test_swallowed_index_error_is_not_returned_as_a_heatmap(net, image, monkeypatch):
    from pytorch_grad_cam import GradCAM

    class Swallowed(GradCAM):  # pytorch-grad-cam's __exit__ swallows IndexError
        def forward(self, *a, **k):
            raise IndexError("lost")

    monkeypatch.setitem(gradcam.METHODS, "Swallowed", Swallowed)
    with pytest.raises(ExplainError, match="failed"):
        explain(net, image, "Swallowed")
    assert hooks_left(net) == 0


@pytest.mark.parametrize("kwargs, match", [({"method": "Nope"}, "unknown method"),
                                           ({"target_class": 10}, "target class"),
                                           ({"layer": "C9"}, "unknown layer")])
def test_bad_arguments(net, image, kwargs, match):
    with pytest.raises(ExplainError, match=match):
        explain(net, image, **kwargs)
    with pytest.raises(ExplainError):
        explain(net, image[:, :, :2])


def test_concurrent_requests_do_not_mix_heatmaps(net):
    rng = np.random.default_rng(5)
    imgs = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(4)]
    expected = [explain(net, im, "GradCAM", "C3", 1) for im in imgs]
    results, errors = {}, []

    def worker(i):
        try:
            for _ in range(3):
                results.setdefault(i, []).append(explain(net, imgs[i], "GradCAM", "C3", 1))
                service.probabilities(net, imgs[(i + 1) % 4])  # plain forwards in between
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i in range(4):
        for h in results[i]:
            assert np.allclose(h, expected[i], atol=1e-5)
    assert hooks_left(net) == 0


def test_overlay(image):
    heat = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    out = overlay(image, heat, 0.0, 256)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    assert (out[::8, ::8] == image).all()  # opacity 0: the enlarged image itself
    full = overlay(image, heat, 1.0, 128)
    assert (full == gradcam.colorize(heat, 128)).all()
    with pytest.raises(ExplainError):
        overlay(image, heat, 1.5)
