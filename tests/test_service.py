import threading

import numpy as np
import pytest

from cifar_s9 import service
from cifar_s9.augment import AugmentConfig, InvalidAugmentConfig
from cifar_s9.checkpoint import CheckpointError
from cifar_s9.data import CLASSES, Split


@pytest.fixture(autouse=True)
def no_data_dir(monkeypatch):
    monkeypatch.delenv("CIFAR_S9_DATA_DIR", raising=False)


def test_store_serves_weights(weights_path):
    store = service.ModelStore(weights_path)
    active = store.current
    assert active.trained and active.warning is None and active.source == str(weights_path)
    assert not active.model.training and active.card["preset"] == "default"


@pytest.mark.parametrize("weights", [None, "/no/such.safetensors"])
def test_store_falls_back_to_an_untrained_model(weights):
    active = service.ModelStore(weights).current
    assert not active.trained and "Untrained model" in active.warning
    assert active.source == "untrained default"


def test_store_warns_on_a_corrupt_file(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    assert "not a valid safetensors" in service.ModelStore(bad).current.warning


def test_activate_swaps_and_keeps_the_old_model_on_error(weights_path, tmp_path):
    store = service.ModelStore(None)
    v0 = store.current.version
    active = store.activate(weights_path)
    assert active.version > v0 and store.current is active
    with pytest.raises(CheckpointError):
        store.activate(tmp_path / "missing.safetensors")
    assert store.current is active


def test_probabilities_and_top_k(model):
    probs = service.probabilities(model, np.zeros((32, 32, 3), np.uint8))
    assert probs.shape == (10,) and abs(probs.sum() - 1) < 1e-5
    top = service.top_k(probs, 3)
    assert len(top) == 3 and list(top.values()) == sorted(top.values(), reverse=True)
    assert len(service.top_k(probs, 99)) == 10 and len(service.top_k(probs, 0)) == 1


def test_class_index():
    assert service.class_index("predicted") is None and service.class_index(None) is None
    assert service.class_index("cat") == 3 and service.class_index("Truck") == 9
    assert service.class_index(2) == 2
    with pytest.raises(ValueError, match="unknown class"):
        service.class_index("unicorn")
    with pytest.raises(ValueError):
        service.class_index(10)


def test_examples_exist():
    paths = service.example_paths()
    assert [p.stem for p in paths] == list(CLASSES)


def test_test_data_falls_back_to_the_sample(tmp_path):
    data = service.load_test_data(None)
    assert not data.full and len(data.split) == 500 and "--data-dir" in data.note
    data = service.load_test_data(tmp_path / "nowhere")
    assert not data.full and "Could not load" in data.note


def test_test_data_from_an_image_folder(tmp_path, monkeypatch):
    from PIL import Image
    for c in CLASSES[:2]:
        (tmp_path / "test" / c).mkdir(parents=True)
        Image.new("RGB", (32, 32), (1, 2, 3)).save(tmp_path / "test" / c / "0.png")
    data = service.load_test_data(tmp_path, cache_dir=tmp_path / "cache")
    assert data.full and len(data.split) == 2 and "Full test set" in data.note


def test_training_data_falls_back_to_a_demo_split():
    data = service.load_training_data(None, allow_download=False)
    assert data.demo_only and len(data.train) == 400 and len(data.test) == 100
    assert "only demonstrates the training loop" in data.note
    assert not set(map(bytes, data.train.images[:50])) & set(map(bytes, data.test.images))


def test_evaluation_cache_evaluates_once_per_model(weights_path, monkeypatch):
    calls = []
    real = service.evaluate
    monkeypatch.setattr(service, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    store = service.ModelStore(weights_path)
    split = service.load_sample()
    split = Split(split.images[:40], split.labels[:40], "forty")
    cache = service.EvaluationCache()
    threads = [threading.Thread(target=cache.get, args=(store.current, split)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ev = cache.get(store.current, split)
    assert len(calls) == 1 and ev.n == 40
    store.activate(weights_path)
    cache.get(store.current, split)
    assert len(calls) == 2


def test_coerce_augment():
    cfg = service.coerce_augment({"holes_max": 3.0, "flip_p": "0.25", "border_mode": "wrap",
                                  "unknown": 1, "fill": None})
    assert cfg.holes_max == 3 and isinstance(cfg.holes_max, int) and cfg.flip_p == 0.25
    assert cfg.border_mode == "wrap" and cfg.fill == AugmentConfig().fill
    with pytest.raises(InvalidAugmentConfig, match="whole number"):
        service.coerce_augment({"holes_max": 2.5})
    with pytest.raises(InvalidAugmentConfig, match="must be a number"):
        service.coerce_augment({"flip_p": "lots"})


def test_augment_grid_is_reproducible():
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    cfg = AugmentConfig(dropout_p=1.0)
    grid, applied = service.augment_grid(img, cfg, 5, seed=7)
    assert len(grid) == 6 and grid[0][1] == "original" and grid[0][0].shape == (128, 128, 3)
    assert set(applied) == {f"#{i}" for i in range(1, 6)}
    again, _ = service.augment_grid(img, cfg, 5, seed=7)
    assert all((a[0] == b[0]).all() for a, b in zip(grid, again))
    other, _ = service.augment_grid(img, cfg, 5, seed=8)
    assert any((a[0] != b[0]).any() for a, b in zip(grid[1:], other[1:]))
    with pytest.raises(ValueError):
        service.augment_grid(img, cfg, 0, 0)
