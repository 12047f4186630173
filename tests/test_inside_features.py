"""Feature maps (cifar_s9.analysis.inside.features): the arrays equal what a forward hook records, the
sorting and colour scales by hand, hooks never left behind."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cifar_s9.data.transforms import normalize_uint8
from cifar_s9.analysis import private
from cifar_s9.analysis.gradcam import hooks_left, layer_names, target_layer
from cifar_s9.analysis.inside import InsideError, features
from cifar_s9.model.net import build_model
from inside_fixtures import image, net  # noqa: F401,E402  (shared fixtures)




def test_feature_maps_equal_what_a_forward_hook_records(net, image):
    recorded = {}
    handles = [target_layer(net, name).register_forward_hook(
        lambda m, i, o, name=name: recorded.__setitem__(name, o.detach().clone()))
        for name in layer_names(net)]
    try:
        with torch.no_grad():
            net(torch.from_numpy(normalize_uint8(image[None])))
    finally:
        for h in handles:
            h.remove()
    for name in layer_names(net):
        fm = features.feature_maps(net, image, name)
        assert fm.layer == name and fm.activations.dtype == np.float32
        np.testing.assert_array_equal(fm.activations, recorded[name][0].numpy())
    assert features.feature_maps(net, image, "C3").shape == (128, 8, 8)
    assert hooks_left(net) == 0


def test_hooks_are_removed_when_the_forward_pass_fails(image):
    def broken(x):
        raise RuntimeError("boom")
    net = build_model("default").eval()  # fresh: copies mirror the network as it was when made
    net.blocks[0].forward = broken
    with pytest.raises(RuntimeError, match="boom"):
        features.feature_maps(net, image, "C2")
    assert hooks_left(net) == 0
    assert all(hooks_left(twin) == 0 for twin in private._IDLE.get(net, []))


def test_training_mode_is_restored(image):
    m = build_model("default").train()
    features.feature_maps(m, image, "C1")
    assert m.training


def test_sorting_ranges_and_scales_by_hand():
    a = np.zeros((3, 2, 2), np.float32)
    a[0] = [[0, 1], [2, 3]]      # mean 1.5
    a[1] = [[4, 4], [4, 4]]      # mean 4, flat
    a[2] = [[-1, 0], [0, 1]]     # mean 0
    fm = features.FeatureMaps("C1", a)
    assert list(fm.order) == [1, 0, 2]
    assert fm.value_range(0) == (0.0, 3.0) and fm.value_range(2) == (-1.0, 1.0)
    assert fm.scale_for(0, "shared") == (-1.0, 4.0) and fm.scale_for(0, "channel") == (0.0, 3.0)
    tiles = features.channel_tiles(fm, "channel", size=40)
    assert [c for _, c in tiles] == ["#1  4.00 to 4.00", "#0  0.00 to 3.00", "#2  -1.00 to 1.00"]
    assert tiles[0][0].shape == (40 + 13 + 2, 40, 3)          # the map, then a line of label
    np.testing.assert_array_equal(tiles[1][0][:40], features.channel_picture(fm, 0, "channel", size=40))
    assert (tiles[1][0][40:] != 255).any()                    # something is written below
    # channel 0 on its own scale spans the whole colour map; on the shared scale (-1 to 4) its
    # 0 is at 0.2 and its 3 at 0.8
    own = features.channel_picture(fm, 0, "channel", size=2)
    shared = features.channel_picture(fm, 0, "shared", size=2)
    colour = features.render.colour
    assert tuple(own[0, 0]) == tuple(colour(np.zeros((1, 1)))[0, 0])
    assert tuple(own[1, 1]) == tuple(colour(np.ones((1, 1)))[0, 0])
    assert tuple(shared[0, 0]) == tuple(colour(np.full((1, 1), 0.2))[0, 0])
    assert tuple(shared[1, 1]) == tuple(colour(np.full((1, 1), 0.8))[0, 0])
    flat = features.channel_picture(fm, 1, "channel", size=2)   # a flat channel: lowest colour
    assert len({tuple(p) for p in flat.reshape(-1, 3)}) == 1
    for bad in ("both", None, 3):
        with pytest.raises(InsideError, match="scale"):
            features.channel_tiles(fm, bad)
    for bad in (3, -1, 1.5, float("nan"), "x", None):
        with pytest.raises(InsideError, match="channel"):
            features.channel_picture(fm, bad)


def test_enlarged_channel_is_a_nearest_neighbour_block_picture(net, image):
    fm = features.feature_maps(net, image, "C4")
    pic = features.channel_picture(fm, int(fm.order[0]), "channel", size=256)
    assert pic.shape == (256, 256, 3)
    assert (pic[:64, :64] == pic[0, 0]).all()                  # unit (0, 0) is one 64x64 block


def test_click_to_unit_by_hand():
    # a 4x4 map shown at 256x256: 64 pixels per unit; SelectData.index is [x, y]
    assert features.unit_at([0, 0], (256, 256, 3), (4, 4)) == (0, 0)
    assert features.unit_at([63, 64], (256, 256, 3), (4, 4)) == (1, 0)
    assert features.unit_at([255, 130], (256, 256, 3), (4, 4)) == (2, 3)
    assert features.unit_at([17, 9], (256, 256, 3), (32, 32)) == (1, 2)
    for bad in ([256, 0], [0, -1], [1.5, 0], "0,0", [0], None, [float("nan"), 0]):
        with pytest.raises(InsideError, match="click|position"):
            features.unit_at(bad, (256, 256, 3), (4, 4))


@pytest.mark.parametrize("bad", ["C5", "", "C1.conv0", "C1.conv1.0", None, 3, ["C1"]])
def test_bad_layers(net, image, bad):
    with pytest.raises(InsideError, match="layer"):
        features.feature_maps(net, image, bad)


@pytest.mark.parametrize("bad", [np.zeros((32, 32, 3), np.float32), np.zeros((64, 64, 3), np.uint8),
                                 np.zeros((32, 32), np.uint8), "image.png", None])
def test_bad_images(net, bad):
    with pytest.raises(InsideError, match="uint8 image"):
        features.feature_maps(net, bad, "C1")
