"""Image-folder loading, labels in CIFAR order, the decode cache, and readable failures."""
from __future__ import annotations

import numpy as np
import pytest
from synthetic import PALETTE, write_class_folders

from cifar_s9.data import cifar as data
from cifar_s9.data.cifar import (CLASSES, DatasetUnavailable, Split, find_split_dir, load_image_folder,
                           load_split, load_torchvision)


def mean_colours(split: Split) -> np.ndarray:
    return split.images.reshape(len(split), -1, 3).mean(1)


def assert_colours_match_labels(split: Split):
    # every synthetic image is its class colour plus noise: the nearest palette colour is its label
    distances = np.linalg.norm(mean_colours(split)[:, None, :] - PALETTE[None].astype(float), axis=2)
    np.testing.assert_array_equal(distances.argmin(1), split.labels)


@pytest.fixture
def decode_spy(monkeypatch):
    calls = []
    real = data.decode_images

    def spy(files):
        calls.append(len(files))
        return real(files)

    monkeypatch.setattr(data, "decode_images", spy)
    return calls


def test_train_and_test_splits(dataset_dir, tmp_path):
    train = load_image_folder(dataset_dir, "train", cache_dir=tmp_path / "cache")
    test = load_image_folder(dataset_dir, "test", cache_dir=tmp_path / "cache")
    assert (len(train), len(test)) == (40, 20)
    assert train.images.shape == (40, 32, 32, 3) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64
    assert np.bincount(train.labels).tolist() == [4] * 10
    assert np.bincount(test.labels).tolist() == [2] * 10
    assert_colours_match_labels(train)
    assert_colours_match_labels(test)
    assert "train" in train.source


def test_labels_follow_cifar_order_not_folder_order(tmp_path):
    # Only two classes, one with a capitalised folder: labels must be CIFAR indices 3 and 9,
    # not positions 0 and 1 among the folders present.
    write_class_folders(tmp_path / "d" / "test", per_class=3, classes=("Truck", "cat"))
    split = load_image_folder(tmp_path / "d", "test", cache_dir=tmp_path / "cache")
    assert sorted(set(split.labels.tolist())) == [CLASSES.index("cat"), CLASSES.index("truck")] == [3, 9]
    assert_colours_match_labels(split)


def test_bare_class_folders_serve_as_an_evaluation_set(tmp_path):
    write_class_folders(tmp_path / "eval", per_class=1, classes=("ship", "frog"))
    assert find_split_dir(tmp_path / "eval", "test") == tmp_path / "eval"
    split = load_image_folder(tmp_path / "eval", "test", cache_dir=tmp_path / "cache")
    assert sorted(split.labels.tolist()) == [6, 8]


def test_other_sizes_and_modes_are_converted(tmp_path):
    from PIL import Image

    write_class_folders(tmp_path / "d", per_class=1, classes=("dog",), size=40)
    Image.new("L", (32, 32), 77).save(tmp_path / "d" / "dog" / "grey.png")
    (tmp_path / "d" / "dog" / "notes.txt").write_text("not an image")
    split = load_image_folder(tmp_path / "d", "test", cache_dir=tmp_path / "cache")
    assert split.images.shape == (2, 32, 32, 3)
    assert (split.images[1] == 77).all()  # grey.png sorts after 000.png
    assert split.labels.tolist() == [5, 5]


def test_second_load_hits_the_cache(dataset_dir, tmp_path, decode_spy):
    first = load_image_folder(dataset_dir, "test", cache_dir=tmp_path / "cache")
    assert decode_spy == [20]
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    second = load_image_folder(dataset_dir, "test", cache_dir=tmp_path / "cache")
    assert decode_spy == [20]  # not decoded again
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)


def test_a_changed_folder_is_decoded_again(dataset_dir, tmp_path, decode_spy):
    load_image_folder(dataset_dir, "test", cache_dir=tmp_path / "cache")
    write_class_folders(dataset_dir / "test", per_class=3, classes=("bird",), seed=7)  # adds 002.png
    split = load_image_folder(dataset_dir, "test", cache_dir=tmp_path / "cache")
    assert decode_spy == [20, 21]
    assert len(split) == 21


@pytest.mark.parametrize("damage", ["garbage", "truncate", "empty", "wrong_shape"])
def test_a_corrupt_cache_is_rebuilt(dataset_dir, tmp_path, decode_spy, damage):
    first = load_image_folder(dataset_dir, "test", cache_dir=tmp_path / "cache")
    (cache,) = (tmp_path / "cache").glob("*.npz")
    raw = cache.read_bytes()
    if damage == "garbage":
        cache.write_bytes(np.random.default_rng(0).bytes(len(raw)))
    elif damage == "truncate":
        cache.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        cache.write_bytes(b"")
    else:
        np.savez(cache, images=np.zeros((3, 32, 32, 3), np.uint8), labels=np.zeros(3, np.int64))
    second = load_image_folder(dataset_dir, "test", cache_dir=tmp_path / "cache")
    assert decode_spy == [20, 20]
    np.testing.assert_array_equal(first.images, second.images)
    np.testing.assert_array_equal(first.labels, second.labels)
    third = load_image_folder(dataset_dir, "test", cache_dir=tmp_path / "cache")
    assert decode_spy == [20, 20]  # the rebuilt cache is good again
    assert len(third) == 20
    assert not list((tmp_path / "cache").glob(".*.tmp"))


def test_unknown_class_folder(tmp_path):
    write_class_folders(tmp_path / "d" / "test", per_class=1, classes=("cat",))
    (tmp_path / "d" / "test" / "unicorn").mkdir()
    with pytest.raises(DatasetUnavailable, match="unicorn"):
        load_image_folder(tmp_path / "d", "test", cache_dir=tmp_path / "cache")


def test_empty_class_folders(tmp_path):
    (tmp_path / "d" / "test" / "cat").mkdir(parents=True)
    with pytest.raises(DatasetUnavailable, match="no images"):
        load_image_folder(tmp_path / "d", "test", cache_dir=tmp_path / "cache")


def test_folder_without_split_or_classes(tmp_path):
    (tmp_path / "d" / "misc").mkdir(parents=True)
    with pytest.raises(DatasetUnavailable, match="neither a 'test/' folder nor class folders"):
        load_image_folder(tmp_path / "d", "test", cache_dir=tmp_path / "cache")


def test_load_split_with_a_data_dir(dataset_dir, tmp_path, no_data_env):
    split = load_split("train", dataset_dir, cache_dir=tmp_path / "cache")
    assert len(split) == 40


def test_load_split_reads_the_environment(dataset_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR_S9_DATA_DIR", str(dataset_dir))
    assert len(load_split("test", cache_dir=tmp_path / "cache")) == 20


def test_load_split_missing_dir(tmp_path, no_data_env):
    with pytest.raises(DatasetUnavailable, match="--data-dir .*missing is not a directory"):
        load_split("test", tmp_path / "missing", cache_dir=tmp_path / "cache")


def test_load_split_rejects_other_split_names(tmp_path):
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_split("val", cache_dir=tmp_path)


@pytest.fixture
def offline_torchvision(monkeypatch):
    import torchvision.datasets

    class OfflineCIFAR10:
        def __init__(self, root, train=True, download=False):
            raise RuntimeError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", OfflineCIFAR10)


def test_no_data_and_no_network_names_both_ways_out(tmp_path, no_data_env, offline_torchvision):
    with pytest.raises(DatasetUnavailable) as info:
        load_split("train", None, cache_dir=tmp_path)
    message = str(info.value)
    assert "download" in message and "internet" in message
    assert "--data-dir" in message and "CIFAR_S9_DATA_DIR" in message
    assert "name resolution" in message  # the underlying reason is kept
    assert "\n" not in message
    with pytest.raises(DatasetUnavailable):
        load_torchvision("test", cache_dir=tmp_path, download=False)


def test_subset_is_seeded_and_consistent():
    labels = np.arange(50) % 10
    images = np.zeros((50, 32, 32, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(50)  # remember which image is which
    split = Split(images, labels, "numbers")
    a, b, c = split.subset(10, seed=1), split.subset(10, seed=1), split.subset(10, seed=2)
    assert len(a) == 10
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    np.testing.assert_array_equal(a.labels, a.images[:, 0, 0, 0] % 10)  # pairs stay together
    assert len(set(a.images[:, 0, 0, 0].tolist())) == 10                 # without replacement
    assert split.subset(None) is split and split.subset(50) is split
    assert "subset 10" in a.source


# ---------------------------------------------------------------- validation split
def test_validation_split_holds_back_per_class_and_is_disjoint():
    from cifar_s9.data.cifar import Split, ValidationSpec, carve_validation, validation_indices
    labels = np.repeat(np.arange(10), 7)  # 7 images per class
    images = np.arange(len(labels), dtype=np.uint8)[:, None, None, None] * np.ones((1, 32, 32, 3), np.uint8)
    train, val = carve_validation(Split(images, labels, "synthetic"), ValidationSpec(per_class=2, seed=3))
    assert len(val) == 20 and len(train) == 50
    assert np.bincount(val.labels, minlength=10).tolist() == [2] * 10
    # each image sits in exactly one part (pixel value = original index)
    assert sorted(train.images[:, 0, 0, 0].tolist() + val.images[:, 0, 0, 0].tolist()) == list(range(70))
    again = validation_indices(labels, ValidationSpec(per_class=2, seed=3))
    assert again.tolist() == sorted(val.images[:, 0, 0, 0].tolist())
    other = validation_indices(labels, ValidationSpec(per_class=2, seed=4))
    assert other.tolist() != again.tolist()


def test_validation_split_refuses_to_take_a_whole_class():
    from cifar_s9.data.cifar import ValidationSpec, validation_indices
    with pytest.raises(ValueError, match="class 0 has 2 training images"):
        validation_indices(np.array([0, 0, 1, 1, 1]), ValidationSpec(per_class=2))
