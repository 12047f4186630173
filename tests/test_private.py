"""Private copies for the views (issue 26.1): a view never hooks or mutates the network other
visitors are running; its copies are the same network, lent to one request at a time, bounded."""
import threading

import numpy as np
import pytest
import torch

from cifar_s9.analysis import private, report
from cifar_s9.analysis.gradcam import explain, target_layer
from cifar_s9.analysis.inside import features, probe
from cifar_s9.model.net import build_model


@pytest.fixture
def net():
    torch.manual_seed(0)
    return build_model("default").eval()


def test_a_copy_is_the_same_network_and_not_the_network(net):
    x = torch.randn(2, 3, 32, 32)
    with private.borrowed(net) as twin:
        assert twin is not net
        assert all(a is not b for a, b in zip(twin.parameters(), net.parameters()))
        with torch.no_grad():
            assert torch.equal(twin(x), net(x))
        assert not twin.training


def test_concurrent_borrowers_get_different_copies_and_the_idle_ones_are_bounded(net):
    inside, release = [], threading.Event()

    def borrow():
        with private.borrowed(net) as twin:
            inside.append(twin)
            release.wait(10)

    threads = [threading.Thread(target=borrow) for _ in range(private.IDLE_PER_MODEL + 2)]
    for t in threads:
        t.start()
    from waiting import wait_until
    wait_until(lambda: len(inside) == len(threads), "the borrowers never all held a copy")
    release.set()
    for t in threads:
        t.join()
    assert len({id(t) for t in inside}) == len(threads)
    assert private.idle_copies(net) == private.IDLE_PER_MODEL


def test_a_copy_left_with_a_hook_is_not_lent_again(net):
    with private.borrowed(net) as twin:
        twin.blocks[0].register_forward_hook(lambda *a: None)  # a view that forgot to remove it
    with private.borrowed(net) as again:
        assert again is not twin and private.hooks_left(again) == 0


def test_views_leave_the_served_network_untouched(net):
    """Every view that hooks (feature maps, Grad-CAM, torchinfo) runs while a hook on the served
    network counts its forward passes: none reaches it, and its mode and gradients stay."""
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    passes = []
    handle = target_layer(net, "C2").register_forward_hook(lambda *a: passes.append(1))
    try:
        features.feature_maps(net, image, "C2")
        explain(net, image, "GradCAM", "C2")
        rows = report.architecture_rows(net)
    finally:
        handle.remove()
    assert passes == [] and not net.training and all(p.grad is None for p in net.parameters())
    assert rows[0][0] == "C1" and private.hooks_left(net) == 0


def test_running_yields_an_eval_copy_even_of_a_training_network(net):
    net.train()
    with probe.running(net) as twin:
        assert twin is not net and not twin.training
    assert net.training
