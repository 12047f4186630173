"""Resume files written before the trainer was split (config/events/budget, issue 24.4) still load
and continue to the bit.

Runs in progress are resumed from such files (training/long, training/seed_ref). Their format,
as the earlier trainer wrote it: the keys below and no `eval_split`; per-epoch records with
`test_loss`/`test_acc`; a `train_config` that may lack fields added since (seed_ref's has no
`precision`, `cycle_momentum`, `final_div_factor`, `mixup_max`, `mixup_ramp_epochs`); and for a
time-budgeted run the planned epoch count written into `train_config.epochs`.
"""
from __future__ import annotations

import threading
from dataclasses import replace

import torch
from synthetic import make_split, tiny_config

from cifar_s9.data.augment import AugmentConfig
from cifar_s9.records.checkpoint import load_resume, save_resume
from cifar_s9.train.config import TrainConfig
from cifar_s9.train.events import EpochEvent
from cifar_s9.train.trainer import Trainer

OLD_KEYS = {"model", "ema", "optimizer", "scheduler", "epoch", "history", "wall_time_s",
            "model_config", "train_config", "aug_config"}
ADDED_SINCE = ("precision", "cycle_momentum", "final_div_factor", "mixup_max", "mixup_ramp_epochs")
# held back 1 image a class: the earlier CLI then scored every epoch on that validation split
CFG = TrainConfig(epochs=3, batch_size=16, lr=0.1, label_smoothing=0.1, mixup_alpha=0.2, ema_decay=0.9,
                  device="cpu", threads=1, workers=0, log_every=1, val_per_class=1)


def as_old_format(state: dict, planned_epochs: int | None = None) -> dict:
    """`state` as the trainer before the split wrote it."""
    old = {k: v for k, v in state.items() if k in OLD_KEYS}
    assert set(old) == OLD_KEYS
    old["history"] = [{("test_" + k[5:] if k in ("eval_loss", "eval_acc") else k): v
                       for k, v in h.items() if k != "eval_split"} for h in state["history"]]
    old["train_config"] = {k: v for k, v in state["train_config"].items() if k not in ADDED_SINCE}
    if planned_epochs is not None:  # the old planner rewrote the config mid-run
        old["train_config"]["epochs"] = planned_epochs
    return old


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_an_old_resume_file_continues_bit_for_bit(tmp_path):
    split, val = make_split(64), make_split(20, seed=5)
    model_cfg, aug = tiny_config(dropout=0.1, residual=True), AugmentConfig()
    straight = Trainer(model_cfg, CFG, aug, split, val, eval_split="validation")
    straight.fit()

    stop = threading.Event()
    first = Trainer(model_cfg, CFG, aug, split, val, eval_split="validation",
                    callback=lambda e: stop.set() if isinstance(e, EpochEvent) else None)
    first.fit(stop, checkpoint=tmp_path / "new.pt")
    old = as_old_format(load_resume(tmp_path / "new.pt"))
    assert old["history"][0]["test_acc"] is not None and "eval_split" not in old
    save_resume(tmp_path / "old.pt", old)

    torch.manual_seed(999)  # the global RNG must not matter
    resumed = Trainer.resume(tmp_path / "old.pt", split, val)
    assert resumed.cfg == TrainConfig.from_dict(old["train_config"]) == CFG
    assert (resumed.epoch, resumed.steps_done, resumed.total_steps, resumed.epochs) == (1, 4, 12, 3)
    assert resumed.scheduler.state_dict() == first.scheduler.state_dict()
    assert resumed.eval_split == "validation"  # val_per_class > 0: what the earlier CLI scored
    assert resumed.history[0]["eval_acc"] == old["history"][0]["test_acc"]
    assert resumed.history[0]["eval_split"] == "validation" and "test_acc" not in resumed.history[0]
    resumed.fit(checkpoint=tmp_path / "old.pt")
    assert_same_state(resumed.model.state_dict(), straight.model.state_dict())
    assert_same_state(resumed.ema.state_dict(), straight.ema.state_dict())
    assert [h["lr"] for h in resumed.history] == [h["lr"] for h in straight.history]
    assert [h["eval_acc"] for h in resumed.history] == [h["eval_acc"] for h in straight.history]
    assert load_resume(tmp_path / "old.pt")["eval_split"] == "validation"  # rewritten in today's format


def test_an_old_budgeted_resume_file_keeps_its_plan(tmp_path):
    # 64 images in batches of 16, a budget of 200 s at real speed: the plan is whatever it is;
    # the old file records its epochs in train_config, the new one keeps the settings as given
    split = make_split(64)
    cfg = replace(CFG, ema_decay=0.0, mixup_alpha=0.0, val_per_class=0, epochs=1, time_budget_s=200.0)
    stop = threading.Event()
    first = Trainer(tiny_config(), cfg, AugmentConfig(),
                    split, callback=lambda e: stop.set() if isinstance(e, EpochEvent) else None)
    first.fit(stop, checkpoint=tmp_path / "new.pt")
    planned = first.epochs  # as re-planned after the first epoch
    new = load_resume(tmp_path / "new.pt")
    assert new["train_config"]["epochs"] == 1  # the plan is not written into the settings
    save_resume(tmp_path / "old.pt", as_old_format(new, planned_epochs=planned))
    for name in ("new.pt", "old.pt"):
        resumed = Trainer.resume(tmp_path / name, split)
        assert (resumed.total_steps, resumed.epochs, resumed.steps_done) == (first.total_steps, planned, 4)
        assert resumed.scheduler.get_last_lr() == first.scheduler.get_last_lr()
        assert resumed.eval_split is None  # nothing to score was given
