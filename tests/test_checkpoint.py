"""Weights round-trip, model cards, refusal of anything that is not our checkpoint, atomic writes."""
from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
from synthetic import Marker, tiny_config
from safetensors.torch import save_file

from cifar_s9.records import checkpoint
from cifar_s9.records.checkpoint import (CheckpointError, card_path, load_resume, load_weights, read_card,
                                 save_resume, save_weights)
from cifar_s9.model.net import ModelConfig, Net, build_model


def trained_like(config=None, seed=0) -> Net:
    """A model whose BatchNorm running statistics have moved off their defaults."""
    torch.manual_seed(seed)
    model = Net(config or tiny_config())
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 32, 32) * 2 + 0.5)
    return model.eval()


@pytest.fixture
def saved(tmp_path):
    model = trained_like()
    path = tmp_path / "w" / "model.safetensors"
    save_weights(model, path, {"accuracy": {"test": {"plain": 0.5}}, "epochs": 3})
    return model, path


def test_round_trip_gives_the_same_logits(saved):
    model, path = saved
    loaded, card = load_weights(path)
    assert loaded.config == model.config
    assert not loaded.training
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)
    for k, v in model.state_dict().items():  # buffers too: running stats, num_batches_tracked
        assert torch.equal(loaded.state_dict()[k], v), k
    assert card["epochs"] == 3


def test_round_trip_of_every_preset(tmp_path, preset):
    model = build_model(preset).eval()
    save_weights(model, tmp_path / f"{preset}.safetensors", {})
    loaded, card = load_weights(tmp_path / f"{preset}.safetensors", expected=model.config)
    assert card["params"] == model.num_params()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=0, rtol=0)


def test_card_is_written_beside_the_weights(saved):
    model, path = saved
    assert card_path(path) == path.with_suffix(".json") and card_path(path).is_file()
    card = json.loads(card_path(path).read_text())
    assert card["accuracy"] == {"test": {"plain": 0.5}}
    assert card["params"] == model.num_params()
    assert ModelConfig.from_dict(card["model_config"]) == model.config
    assert read_card(path) == card


def test_missing_card_reads_as_empty_and_a_broken_one_is_refused(saved):
    _, path = saved
    card_path(path).unlink()
    assert read_card(path) == {}
    assert load_weights(path)[1] == {}
    card_path(path).write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_weights(path)


def test_truncated_file(saved):
    _, path = saved
    raw = path.read_bytes()
    for cut in (len(raw) // 2, 100, 7):
        path.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match="not a valid safetensors file"):
            load_weights(path)


@pytest.mark.parametrize("content", [b"", b"\x00", bytes(range(256)) * 40])
def test_zero_and_random_bytes(tmp_path, content):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError):
        load_weights(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_weights(tmp_path / "absent.safetensors")


def test_a_torch_pickle_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    torch.save(trained_like().state_dict(), path)
    with pytest.raises(CheckpointError):
        load_weights(path)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_malicious_pickle_never_runs(tmp_path, writer):
    marker = tmp_path / "PWNED"
    payload = {"model": Marker(marker)}
    for name in ("model.safetensors", "resume.pt"):
        path = tmp_path / name
        if writer == "pickle":
            path.write_bytes(pickle.dumps(payload))
        else:
            torch.save(payload, path)
        assert not marker.exists()  # writing it did not run it either
    with pytest.raises(CheckpointError):
        load_weights(tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="cannot resume"):
        load_resume(tmp_path / "resume.pt")
    assert not marker.exists()
    # the payload is live: plain pickle.loads would have created the marker
    pickle.loads(pickle.dumps(payload)).get("model").close()
    assert marker.exists()


def test_another_architecture_is_refused(saved):
    _, path = saved
    other = build_model("seed").config
    with pytest.raises(CheckpointError, match="different architecture"):
        load_weights(path, expected=other)
    assert load_weights(path, expected=tiny_config())[0] is not None


def test_tensors_that_do_not_fit_the_recorded_config_are_refused(tmp_path):
    # the metadata says "tiny network" but the tensors are the seed preset's
    small, wide = trained_like(tiny_config()), build_model("seed")
    state = {k: v.contiguous() for k, v in wide.state_dict().items()}
    path = tmp_path / "mixed.safetensors"
    save_file(state, str(path), metadata={"model_config": json.dumps(small.config.to_dict())})
    with pytest.raises(CheckpointError, match="does not match its architecture"):
        load_weights(path)


def test_safetensors_without_our_metadata(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(3)}, str(path))
    with pytest.raises(CheckpointError, match="no cifar_s9 model config"):
        load_weights(path)
    save_file({"weight": torch.zeros(3)}, str(path), metadata={"model_config": "{\"blocks\": 3}"})
    with pytest.raises(CheckpointError, match="declares int blocks; exactly 4"):
        load_weights(path)
    save_file({"weight": torch.zeros(3)}, str(path), metadata={"model_config": "{not json"})
    with pytest.raises(CheckpointError, match="unreadable model config"):
        load_weights(path)


def test_a_failed_write_leaves_the_previous_file(saved, monkeypatch):
    model, path = saved
    before_weights, before_card = path.read_bytes(), card_path(path).read_bytes()
    listing = sorted(p.name for p in path.parent.iterdir())

    def crash_midway(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        save_weights(trained_like(seed=1), path, {"epochs": 99})
    assert path.read_bytes() == before_weights
    assert card_path(path).read_bytes() == before_card
    assert sorted(p.name for p in path.parent.iterdir()) == listing  # no temp file left behind
    loaded, card = load_weights(path)
    assert card["epochs"] == 3


def test_a_failed_resume_write_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "resume.pt"
    save_resume(path, {"epoch": 1, "w": torch.ones(2)})

    def crash(obj, f):
        open(f, "wb").write(b"partial")
        raise RuntimeError("killed")

    monkeypatch.setattr(checkpoint.torch, "save", crash)
    with pytest.raises(RuntimeError, match="killed"):
        save_resume(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_resume(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["resume.pt"]


def test_resume_state_round_trip(tmp_path):
    state = {"epoch": 4, "history": [{"train_loss": 1.5, "test_acc": None}],
             "model": {"w": torch.arange(6.0).reshape(2, 3)}, "model_config": tiny_config().to_dict()}
    save_resume(tmp_path / "r.pt", state)
    loaded = load_resume(tmp_path / "r.pt")
    assert loaded["epoch"] == 4 and loaded["history"] == state["history"]
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    for bad in (b"", b"garbage"):
        (tmp_path / "bad.pt").write_bytes(bad)
        with pytest.raises(CheckpointError, match="cannot resume"):
            load_resume(tmp_path / "bad.pt")


def test_chain_cards_numbers_the_fine_tune_epochs_on():
    from cifar_s9.records.provenance import chain_cards

    base = {"recipe": "full", "epochs": 2, "wall_time_s": 100.0, "train_config": {"lr": 0.15},
            "history": [{"epoch": 1, "epochs": 2, "test_acc": 0.5}, {"epoch": 2, "epochs": 2, "test_acc": 0.6}]}
    tune = {"recipe": "full", "epochs": 1, "wall_time_s": 30.3, "train_config": {"lr": 0.03},
            "history": [{"epoch": 1, "epochs": 1, "test_acc": 0.7}], "preset": "default"}
    card = chain_cards(base, tune, "full", "distill")
    assert [(h["epoch"], h["epochs"], h["stage"]) for h in card["history"]] == [
        (1, 2, "full"), (2, 2, "full"), (3, 3, "distill")]
    assert card["epochs"] == 3 and card["wall_time_s"] == 130.3
    assert [s["name"] for s in card["stages"]] == ["full", "distill"]
    assert card["stages"][0]["train_config"] == {"lr": 0.15} and card["train_config"] == {"lr": 0.03}
    assert card["preset"] == "default" and base["history"][0] == {"epoch": 1, "epochs": 2, "test_acc": 0.5}


def test_chain_cards_chains_onto_a_chained_card_keeping_its_stages():
    from cifar_s9.records.provenance import chain_cards

    def run(epochs: int, wall: float, lr: float) -> dict:
        return {"epochs": epochs, "wall_time_s": wall, "train_config": {"lr": lr},
                "history": [{"epoch": e, "epochs": epochs} for e in range(1, epochs + 1)]}

    two = chain_cards(run(2, 100.0, 0.15), run(1, 30.0, 0.03), "full", "distill")
    three = chain_cards(two, run(2, 10.0, 0.1), "ignored", "distill-gpu")
    assert [(h["epoch"], h["epochs"], h["stage"]) for h in three["history"]] == [
        (1, 2, "full"), (2, 2, "full"), (3, 3, "distill"), (4, 5, "distill-gpu"), (5, 5, "distill-gpu")]
    assert [(s["name"], s["train_config"]["lr"], s["epochs"]) for s in three["stages"]] == [
        ("full", 0.15, 2), ("distill", 0.03, 1), ("distill-gpu", 0.1, 2)]
    assert three["epochs"] == 5 and three["wall_time_s"] == 140.0


# ---------------------------------------------------------------- declared architecture (issue 13)

from cifar_s9.records.checkpoint import APP_LIMITS, ArchitectureLimits, check_declared, param_count  # noqa: E402
from cifar_s9.model.net import ALL_PRESETS, get_config  # noqa: E402


@pytest.mark.parametrize("preset", sorted(ALL_PRESETS))
def test_param_count_matches_the_built_network(preset):
    config = get_config(preset)
    assert param_count(config) == Net(config).num_params()


def test_param_count_by_hand():
    # tiny_config: hand-count one standard and one separable conv to pin the formula itself
    from cifar_s9.model.net import BlockSpec, ConvSpec
    std, sep = ConvSpec(4, "standard"), ConvSpec(4, "separable")
    config = ModelConfig(blocks=(BlockSpec((std, sep, sep)),) * 4, in_channels=3, num_classes=10)
    # block 1: 3*4*9 + 8 | 4*9 + 4*4 + 8 (twice); blocks 2-4: 4*4*9 + 8 | 60 | 60; head 4*10 + 10
    by_hand = (108 + 8 + 60 + 60) + 3 * (144 + 8 + 60 + 60) + 50
    assert param_count(config) == by_hand == Net(config).num_params()
    assert param_count(tiny_config()) == Net(tiny_config()).num_params()


def declared(**changes) -> dict:
    d = build_model("default").config.to_dict()
    d.update(changes)
    return d


def conv(**changes) -> dict:
    return {"out_channels": 32, "kind": "standard", "stride": 1, "dilation": 1, **changes}


def block(*convs, residual=False) -> dict:
    return {"convs": list(convs) or [conv(), conv(), conv()], "residual": residual}


@pytest.mark.parametrize("raw, limits, message", [
    (declared(blocks=[block()] * 5), ArchitectureLimits(), "declares 5 blocks; exactly 4"),
    (declared(blocks=[block()] * 20_000), ArchitectureLimits(), "declares 20000 blocks"),
    (declared(blocks=[block(conv(), conv())] * 4), ArchitectureLimits(), "declares 2 convs"),
    (declared(blocks=[block(conv(out_channels=5000), conv(), conv())] * 4), ArchitectureLimits(),
     "out_channels of C1 conv 1"),
    (declared(blocks=[block(conv(out_channels=True), conv(), conv())] * 4), ArchitectureLimits(),
     "out_channels"),
    (declared(blocks=[block(conv(stride=3), conv(), conv())] * 4), ArchitectureLimits(), "stride"),
    (declared(blocks=[block(conv(kind="lambda"), conv(), conv())] * 4), ArchitectureLimits(), "kind"),
    (declared(blocks=[block(conv(dilation=100), conv(), conv())] * 4), ArchitectureLimits(), "dilation"),
    (declared(blocks=[block(conv(kernel=4), conv(), conv())] * 4), ArchitectureLimits(), "kernel must be one of"),
    (declared(blocks=[block(conv(kernel=999), conv(), conv())] * 4), ArchitectureLimits(), "kernel must be one of"),
    (declared(blocks=[{**block(), "extra": 1}] * 4), ArchitectureLimits(), "unknown fields"),
    (declared(order="bn-first"), ArchitectureLimits(), "order"),
    (declared(dropout=1.5), ArchitectureLimits(), "dropout"),
    (declared(in_channels=1), APP_LIMITS, "in_channels=1; 3 is required"),
    (declared(num_classes=100), APP_LIMITS, "num_classes=100; 10 is required"),
    (get_config("wide").to_dict(), APP_LIMITS, "7,827,786 parameters; fewer than 200,000"),
    ([1, 2], ArchitectureLimits(), "not a JSON object"),
    # the count comes from building the network (on the meta device): a residual block whose
    # branch changes the shape cannot be built, so it is refused before any file is read
    (declared(blocks=[block(conv(), conv(out_channels=16), conv(), residual=True)] * 4), ArchitectureLimits(),
     "unreadable model config: a residual block needs"),
])
def test_declared_architecture_out_of_bounds_is_refused(raw, limits, message):
    with pytest.raises(CheckpointError, match=message):
        check_declared(raw, limits)


def test_every_preset_is_within_the_default_limits_and_the_app_presets_within_the_apps():
    from cifar_s9.model.net import PRESETS
    for name in ALL_PRESETS:
        assert check_declared(get_config(name).to_dict()) == get_config(name)
    for name in PRESETS:
        assert check_declared(get_config(name).to_dict(), APP_LIMITS) == get_config(name)


def test_a_20000_block_checkpoint_is_refused_before_anything_is_built(tmp_path, monkeypatch):
    import tracemalloc
    raw = json.dumps(declared(blocks=[block()] * 20_000))
    path = tmp_path / "huge.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"model_config": raw})
    assert path.stat().st_size > 1_000_000  # a large header, as in the issue (4.8 MB there)

    def no_build(*args, **kwargs):
        raise AssertionError("a module was built for a refused config")

    monkeypatch.setattr(checkpoint, "Net", no_build)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="model config of [0-9,]+ characters"):
            load_weights(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20  # the JSON header and its parse, not 1.8 GB of modules


def test_the_app_limits_refuse_a_large_network_and_a_large_file(tmp_path):
    save_weights(build_model("wide").eval(), tmp_path / "wide.safetensors", {})
    with pytest.raises(CheckpointError, match="MB; checkpoints up to 2 MB"):
        load_weights(tmp_path / "wide.safetensors", limits=APP_LIMITS)
    big_file = ArchitectureLimits(**{**APP_LIMITS.__dict__, "max_file_bytes": 64 * 2**20})
    with pytest.raises(CheckpointError, match="fewer than 200,000"):
        load_weights(tmp_path / "wide.safetensors", limits=big_file)
    assert load_weights(tmp_path / "wide.safetensors")[0].num_params() == 7_827_786  # the CLI may


def test_the_shipped_weights_pass_the_app_limits():
    from cifar_s9.cli import DEFAULT_WEIGHTS
    model, _ = load_weights(DEFAULT_WEIGHTS, limits=APP_LIMITS)
    assert model.num_params() < 200_000


def test_every_shipped_card_is_paired_with_its_weights_by_sha256():
    from cifar_s9.cli import DEFAULT_WEIGHTS
    shipped = sorted(DEFAULT_WEIGHTS.parent.glob("*.safetensors"))
    assert shipped
    for path in shipped:  # a card without the hash would load its weights unverified
        assert read_card(path)["weights_sha256"] == checkpoint.file_sha256(path), path.name


# ---------------------------------------------------------------- weights and card as a pair

def test_the_card_records_the_sha256_of_its_weights(saved):
    _, path = saved
    assert read_card(path)["weights_sha256"] == checkpoint.file_sha256(path)


def test_a_card_from_other_weights_is_refused(saved, tmp_path):
    _, path = saved
    other = tmp_path / "other" / "model.safetensors"
    save_weights(trained_like(seed=5), other, {"epochs": 1})
    card_path(path).write_bytes(card_path(other).read_bytes())
    with pytest.raises(CheckpointError, match="model.json does not belong to model.safetensors"):
        load_weights(path)


def test_killed_between_card_and_weights_leaves_a_pair_that_is_refused(saved, monkeypatch):
    _, path = saved
    real_replace = os.replace

    def die_before_the_weights(src, dst):
        if str(dst).endswith(".safetensors"):
            raise KeyboardInterrupt("killed")  # as if by kill -9, after the card was renamed
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", die_before_the_weights)
    with pytest.raises(KeyboardInterrupt):
        save_weights(trained_like(seed=1), path, {"epochs": 99})
    monkeypatch.undo()
    assert read_card(path)["epochs"] == 99  # the new card beside the old weights
    with pytest.raises(CheckpointError, match="does not belong to"):
        load_weights(path)
    save_weights(trained_like(seed=1), path, {"epochs": 99})  # saving again repairs the pair
    assert load_weights(path)[1]["epochs"] == 99


def test_a_card_without_a_hash_still_loads(saved):
    _, path = saved
    card = read_card(path)
    del card["weights_sha256"]
    card_path(path).write_text(json.dumps(card))
    assert load_weights(path)[1]["epochs"] == 3


def test_the_same_weights_saved_twice_are_the_same_bytes(tmp_path):
    for name in ("a", "b"):
        save_weights(trained_like(seed=3), tmp_path / f"{name}.safetensors", {"epochs": 1})
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    assert read_card(tmp_path / "a.safetensors") == read_card(tmp_path / "b.safetensors")


@pytest.mark.parametrize("declared, message", [
    ("[" * 200_000 + "]" * 200_000, "characters"),   # a parser bomb: 400 KB of brackets
    ("[" * 8_000 + "]" * 8_000, "nested too deeply"),  # small enough to parse, too deep to recurse
])
def test_a_deeply_nested_model_config_is_refused_not_crashed(tmp_path, declared, message):
    path = tmp_path / "nested.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata={"model_config": declared})
    with pytest.raises(CheckpointError, match=message):
        load_weights(path)
