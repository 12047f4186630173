"""The package side of the app: the model cache, predictions, evaluations, the app's data with
its fallbacks, UI numbers and the lab's grid (no Gradio)."""
import threading

import numpy as np
import pytest
import torch

from cifar_s9.data import app_data
from cifar_s9.app import lab, serving, uinput
from cifar_s9.data.augment import AugmentConfig, InvalidAugmentConfig
from cifar_s9.records.checkpoint import CheckpointError, save_weights
from cifar_s9.data.cifar import CLASSES, Split
from cifar_s9.model.net import build_model
from cifar_s9.app.serving import ModelCache, ModelChoice


@pytest.fixture(autouse=True)
def no_data_dir(monkeypatch):
    monkeypatch.delenv("CIFAR_S9_DATA_DIR", raising=False)


def other_weights(tmp_path, seed=1, name="other.safetensors", card=None):
    torch.manual_seed(seed)
    path = tmp_path / name
    save_weights(build_model("default").eval(), path, card or {"preset": "default", "epochs": 1})
    return path


# ---------------------------------------------------------------- the model cache

def test_cache_serves_the_shipped_weights(weights_path):
    cache = ModelCache(weights_path)
    active = cache.get(None)
    assert active.trained and active.warning is None and active.source == weights_path.name
    assert not active.model.training and active.card["preset"] == "default"
    assert cache.get(ModelChoice()) is active


@pytest.mark.parametrize("weights", [None, "/no/such.safetensors"])
def test_cache_falls_back_to_an_untrained_model(weights):
    active = ModelCache(weights).shipped
    assert not active.trained and "Untrained model" in active.warning
    assert active.source == "untrained default" and "/no/such" not in active.source


def test_cache_warns_on_a_corrupt_file(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    assert "not a valid safetensors" in ModelCache(bad).shipped.warning


def test_a_choice_is_small_and_names_no_path(weights_path, tmp_path):
    cache = ModelCache(weights_path)
    choice = cache.add(other_weights(tmp_path), "run A")
    assert choice.key != serving.SHIPPED and len(choice.key) == 32 and choice.label == "run A"
    assert cache.get(choice).model is not cache.shipped.model
    assert cache.get(choice).source == "run A" and str(tmp_path) not in repr(choice)


def test_same_bytes_share_one_loaded_model(weights_path, tmp_path):
    cache = ModelCache(weights_path)
    a = cache.add(other_weights(tmp_path, name="a.safetensors"), "a")
    b = cache.add(other_weights(tmp_path, name="b.safetensors"), "b")  # same seed, same bytes
    assert a.key == b.key and len(cache) == 1 and cache.get(a).model is cache.get(b).model
    # each session reads its own name for the same network, never the first uploader's
    assert (cache.get(a).source, cache.get(b).source) == ("a", "b")


def test_one_session_loading_many_models_never_evicts_another_sessions_model(weights_path, tmp_path):
    cache = ModelCache(weights_path, capacity=4, per_owner=2)
    victim_file = other_weights(tmp_path, seed=1, name="victim.safetensors")
    victim = cache.add(victim_file, "upload victim", owner="victim")
    for s in range(2, 12):  # an attacker's session, then a second one, loading ten models
        cache.add(other_weights(tmp_path, seed=s, name=f"{s}.safetensors"), f"m{s}",
                  owner="attacker" if s < 7 else "attacker2")
    victim_file.unlink()  # so a reload could not hide an eviction
    active = cache.get(victim)
    assert active.warning is None and active.key == victim.key and len(cache) == 4
    # the attackers kept only their latest models: their own older ones went first
    assert cache.get(cache.add(other_weights(tmp_path, seed=11, name="11b.safetensors"), "again",
                               owner="attacker2")).warning is None


def test_the_cache_is_bounded_and_reloads_an_evicted_model(weights_path, tmp_path):
    cache = ModelCache(weights_path, capacity=2)
    choices = [cache.add(other_weights(tmp_path, seed=s, name=f"{s}.safetensors"), f"m{s}") for s in (1, 2, 3)]
    assert len(cache) == 2  # m1 evicted
    again = cache.get(choices[0])  # reloaded from its file
    assert again.key == choices[0].key and again.warning is None and len(cache) == 2


def test_a_vanished_checkpoint_falls_back_to_the_shipped_model_with_a_warning(weights_path, tmp_path):
    cache = ModelCache(weights_path, capacity=1)
    path = other_weights(tmp_path)
    gone = cache.add(path, "old run")
    cache.add(other_weights(tmp_path, seed=5, name="x.safetensors"), "x")  # evicts "old run"
    path.unlink()
    active = cache.get(gone)
    assert active.model is cache.shipped.model and "old run is no longer available" in active.warning


def test_a_refused_checkpoint_is_never_cached(weights_path, tmp_path):
    cache = ModelCache(weights_path)

    def refuse(model):
        raise CheckpointError("breaks the rules")
    with pytest.raises(CheckpointError, match="breaks the rules"):
        cache.add(other_weights(tmp_path), "upload", check=refuse)
    with pytest.raises(CheckpointError):
        cache.add(tmp_path / "missing.safetensors", "missing")
    assert len(cache) == 0


def test_probabilities_and_top_k(model):
    probs = serving.probabilities(model, np.zeros((32, 32, 3), np.uint8))
    assert probs.shape == (10,) and abs(probs.sum() - 1) < 1e-5
    top = serving.top_k(probs, 3)
    assert len(top) == 3 and list(top.values()) == sorted(top.values(), reverse=True)
    assert len(serving.top_k(probs, 99)) == 10 and len(serving.top_k(probs, 0)) == 1


def test_class_index():
    assert serving.class_index("predicted") is None and serving.class_index(None) is None
    assert serving.class_index("cat") == 3 and serving.class_index("Truck") == 9
    assert serving.class_index(2) == 2
    with pytest.raises(ValueError, match="unknown class"):
        serving.class_index("unicorn")
    with pytest.raises(ValueError):
        serving.class_index(10)


def test_evaluation_cache_evaluates_once_per_model_and_reports_progress(weights_path, tmp_path, monkeypatch):
    calls = []
    real = serving.predict_logits
    monkeypatch.setattr(serving, "predict_logits", lambda *a, **k: calls.append(1) or real(*a, **k))
    cache = ModelCache(weights_path)
    split = app_data.load_sample()
    split = Split(split.images[:40], split.labels[:40], "forty")
    evals = serving.EvaluationCache(capacity=2)
    threads = [threading.Thread(target=evals.get, args=(cache.shipped, split)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and evals.get(cache.shipped, split).n == 40
    seen = []
    other = cache.get(cache.add(other_weights(tmp_path), "other"))
    evals.get(other, split, lambda done, total: seen.append((done, total)))
    assert len(calls) == 2 and seen[-1] == (40, 40) and evals.cached(cache.shipped, split)


# ---------------------------------------------------------------- data and its fallbacks

def test_examples_exist():
    assert [p.stem for p in app_data.example_paths()] == list(CLASSES)


def test_test_data_falls_back_to_the_sample(tmp_path):
    data = app_data.load_test_data(None)
    assert not data.full and len(data.split) == 500 and "--data-dir" in data.note
    data = app_data.load_test_data(tmp_path / "nowhere")
    assert not data.full and "could not be read" in data.note and str(tmp_path) not in data.note


def test_test_data_from_an_image_folder_names_no_path(tmp_path):
    from PIL import Image
    for c in CLASSES[:2]:
        (tmp_path / "test" / c).mkdir(parents=True)
        Image.new("RGB", (32, 32), (1, 2, 3)).save(tmp_path / "test" / c / "0.png")
    data = app_data.load_test_data(tmp_path, cache_dir=tmp_path / "cache")
    assert data.full and len(data.split) == 2 and "Full test set" in data.note
    assert str(tmp_path) not in data.note + data.split.source


def test_training_data_falls_back_to_a_demo_split_without_downloading(monkeypatch):
    from cifar_s9.data import cifar as data_module
    monkeypatch.setattr(data_module, "load_torchvision",
                        lambda *a, **k: pytest.fail("the app must not download"))
    monkeypatch.setattr(app_data, "load_split", lambda split, d, download: (
        data_module.load_split(split, d, download=download) if download else
        (_ for _ in ()).throw(data_module.DatasetUnavailable("not here"))))
    data = app_data.load_training_data(None)
    assert data.demo_only and len(data.train) == 400 and len(data.test) == 100
    assert "CIFAR-10 is not available on this server" in data.note and "urlopen" not in data.note
    assert not set(map(bytes, data.train.images[:50])) & set(map(bytes, data.test.images))


# ---------------------------------------------------------------- UI numbers and the lab

def test_coerce_augment():
    cfg = uinput.coerce_augment({"holes_max": 3.0, "flip_p": "0.25", "border_mode": "wrap",
                                 "unknown": 1, "fill": None})
    assert cfg.holes_max == 3 and isinstance(cfg.holes_max, int) and cfg.flip_p == 0.25
    assert cfg.border_mode == "wrap" and cfg.fill == AugmentConfig().fill
    with pytest.raises(InvalidAugmentConfig, match="whole number"):
        uinput.coerce_augment({"holes_max": 2.5})
    with pytest.raises(InvalidAugmentConfig, match="must be a number"):
        uinput.coerce_augment({"flip_p": "lots"})
    with pytest.raises(InvalidAugmentConfig, match="mapping"):
        uinput.coerce_augment(["flip_p"])


@pytest.mark.parametrize("value, message", [(float("nan"), "finite"), ("x", "must be a number"),
                                            (True, "must be a number"), (2.5, "whole number"),
                                            (-1, r"in \[0, 9\]"), (10**30, r"in \[0, 9\]")])
def test_whole_number_refuses_readably(value, message):
    with pytest.raises(ValueError, match=message):
        uinput.whole_number(value, "seed", 0, 9)


def test_augment_grid_is_reproducible():
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    cfg = AugmentConfig(dropout_p=1.0)
    grid, applied = lab.augment_grid(img, cfg, 5, seed=7)
    assert len(grid) == 6 and grid[0][1] == "original" and grid[0][0].shape == (128, 128, 3)
    assert set(applied) == {f"#{i}" for i in range(1, 6)}
    assert not any("matrix" in params for view in applied.values() for params in view.values())
    again, _ = lab.augment_grid(img, cfg, 5, seed=7)
    assert all((a[0] == b[0]).all() for a, b in zip(grid, again))
    other, _ = lab.augment_grid(img, cfg, 5, seed=8)
    assert any((a[0] != b[0]).any() for a, b in zip(grid[1:], other[1:]))
    with pytest.raises(ValueError):
        lab.augment_grid(img, cfg, 0, 0)


@pytest.mark.parametrize("values, changed, expected, moved", [
    ({"holes_min": 5, "holes_max": 2}, "holes_min", {"holes_min": 5, "holes_max": 5}, "holes_max raised to 5"),
    ({"holes_min": 5, "holes_max": 2}, "holes_max", {"holes_min": 2, "holes_max": 2}, "holes_min lowered to 2"),
    ({"holes_min": 5, "holes_max": 2}, None, {"holes_min": 5, "holes_max": 5}, "holes_max raised"),
    ({"hole_width_min": 3, "hole_width_max": 9}, "hole_width_min", {"hole_width_min": 3, "hole_width_max": 9}, None),
])
def test_clamp_pairs_lets_the_moved_control_win(values, changed, expected, moved):
    out, note = lab.clamp_pairs(values, changed)
    assert out == expected
    assert (note is None) if moved is None else moved in note


def test_evaluations_are_kept_on_disk_per_weights_and_test_set(weights_path, tmp_path, monkeypatch):
    from cifar_s9.analysis.evaluate import evaluate
    calls = []
    real = serving.predict_logits
    monkeypatch.setattr(serving, "predict_logits", lambda *a, **k: calls.append(1) or real(*a, **k))
    shipped = ModelCache(weights_path).shipped
    split = app_data.load_sample()
    split = Split(split.images[:30], split.labels[:30], "thirty")
    first = serving.EvaluationCache(disk_dir=tmp_path / "evals").get(shipped, split)
    again = serving.EvaluationCache(disk_dir=tmp_path / "evals").get(shipped, split)  # a restarted app
    assert len(calls) == 1 and len(list((tmp_path / "evals").glob("eval-*.npz"))) == 1
    direct = evaluate(shipped.model, split)
    assert again.accuracy == first.accuracy == direct.accuracy
    np.testing.assert_allclose(again.probabilities, direct.probabilities, atol=1e-6)
    other = Split(split.images[:20], split.labels[:20], "thirty")  # other images, same name
    serving.EvaluationCache(disk_dir=tmp_path / "evals").get(shipped, other)
    assert len(calls) == 2


def test_the_inference_copy_folds_batchnorm_and_gives_the_same_logits(model):
    import copy

    from cifar_s9.app.serving import inference_copy
    model = copy.deepcopy(model)  # the fixture is shared by other tests
    torch.manual_seed(0)
    for m in model.modules():  # non-trivial statistics, so the folding really has work to do
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    fast = inference_copy(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model.eval()(x), atol=1e-4, rtol=1e-4)


def test_the_disk_cache_keeps_only_the_most_recently_used_evaluations(weights_path, tmp_path):
    shipped = ModelCache(weights_path).shipped
    sample = app_data.load_sample()
    cache = serving.EvaluationCache(disk_dir=tmp_path / "evals", disk_capacity=2)
    for n in (5, 6, 7):  # three test sets: three files, of which the oldest goes
        cache.get(shipped, Split(sample.images[:n], sample.labels[:n], f"first-{n}"))
    files = sorted((tmp_path / "evals").glob("eval-*.npz"))
    assert len(files) == 2


def test_one_model_evaluating_does_not_hold_up_another(weights_path, tmp_path, monkeypatch):
    cache = ModelCache(weights_path)
    other = cache.get(cache.add(other_weights(tmp_path), "other"))
    split = Split(app_data.load_sample().images[:8], app_data.load_sample().labels[:8], "eight")
    real, entered, release = serving.predict_logits, threading.Event(), threading.Event()

    def slow_for_the_shipped(model, *a, **k):
        if not entered.is_set():  # the first evaluation (the shipped model's) blocks until released
            entered.set()
            assert release.wait(600), "never released"
        return real(model, *a, **k)

    monkeypatch.setattr(serving, "predict_logits", slow_for_the_shipped)
    evals = serving.EvaluationCache()
    blocked = threading.Thread(target=evals.get, args=(cache.shipped, split))
    blocked.start()
    assert entered.wait(600)
    try:
        assert evals.get(other, split).n == 8  # finishes while the shipped one is still evaluating
        assert not evals.cached(cache.shipped, split)
    finally:
        release.set()
        blocked.join()
    assert evals.cached(cache.shipped, split)


@pytest.mark.parametrize("a, b, changed, expected", [
    (10, 4, "holes_min", (10, 10, 10)),   # the min dragged past the max pushes it, and its floor
    (10, 4, "holes_max", (4, 4, 4)),      # the max typed below the min lowers the min
    (2, 9, "holes_min", (2, 9, 2)),       # nothing to push: the floor follows the min alone
    ("2", 9.0, "holes_max", (2, 9, 2)),
    (16, 16, "holes_min", (16, 16, 15)),  # at the top: the max slider keeps a range (15 to 16)
    (2, 99, "holes_max", None),           # out of the field's range: the status line says so
    (0, 4, "holes_min", None),
    (float("nan"), 4, "holes_min", None),
    ([1], 4, "holes_min", None),
])
def test_link_pair_bounds(a, b, changed, expected):
    assert lab.link_pair("holes_min", "holes_max", a, b, changed) == expected


def test_out_of_range_names_the_field_and_its_range():
    assert lab.out_of_range({"hole_height_max": 99}) == (
        "hole_height_max 99 is above its maximum 32: choose a value from 1 to 32.")
    assert lab.out_of_range({"flip_p": -0.5}) == "flip_p -0.5 is below its minimum 0: choose a value from 0 to 1."
    assert lab.out_of_range({"flip_p": 0.5, "fill": 3, "border_mode": "reflect"}) is None
