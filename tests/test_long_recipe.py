"""The long recipe's ingredients: ramped mixup, a cosine end at lr / 10 without a momentum
cycle, colour jitter, bf16 autocast on the CPU, and the CLI flags generated from TrainConfig."""
from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest
import torch
from synthetic import make_split, tiny_config

from cifar_s9.data.augment import NO_AUGMENT, AugmentConfig, build_pipeline
from cifar_s9.train.precision import use_bf16
from cifar_s9.train.recipes import LONG_TRAIN
from cifar_s9.train.config import InvalidTrainConfig, TrainConfig, validate_train_config
from cifar_s9.train.mixup import mixup_lambda
from cifar_s9.train.trainer import Trainer

TINY = TrainConfig(epochs=2, batch_size=16, lr=0.05, label_smoothing=0.0, device="cpu",
                   threads=1, workers=0, log_every=1)


def trainer(cfg: TrainConfig, aug: AugmentConfig = NO_AUGMENT) -> Trainer:
    return Trainer(tiny_config(residual=True), cfg, aug, make_split(64), owns_process=False)


def lambdas_at(cfg: TrainConfig, epoch: int, n: int = 200) -> np.ndarray:
    return np.array([mixup_lambda(cfg, epoch) for _ in range(n)], dtype=float)


def test_ramped_mixup_starts_off_and_grows_to_its_maximum():
    cfg = replace(TINY, mixup_max=0.5, mixup_ramp_epochs=10)
    assert mixup_lambda(cfg, 0) is None  # epoch 0: the ramp is at 0, no mixing at all
    half = lambdas_at(cfg, 5)  # the partner's weight is drawn from U(0, 0.25)
    assert half.min() >= 0.75 and half.max() <= 1.0 and half.min() < 0.80
    full = lambdas_at(cfg, 40)  # past the ramp: U(0, 0.5), so the image itself always dominates
    assert full.min() >= 0.5 and full.min() < 0.55


def test_mixup_without_a_ramp_is_constant_and_plain_runs_draw_nothing():
    assert lambdas_at(replace(TINY, mixup_max=0.2), 0).min() >= 0.8
    state = torch.get_rng_state()
    assert mixup_lambda(TINY, 0) is None
    assert torch.equal(state, torch.get_rng_state())  # the dropout stream of old runs is kept


def test_cosine_ends_at_a_tenth_of_the_peak_with_fixed_beta1():
    cfg = replace(TINY, optimizer="adamw", lr=0.02, momentum=0.9, pct_start=0.1,
                  final_div_factor=1.0, cycle_momentum=False)
    t = trainer(cfg)
    t.fit()
    assert t.optimizer.param_groups[0]["betas"][0] == pytest.approx(0.9)  # a cycle moves it to 0.95
    last = t._make_scheduler(steps_done=t.total_steps - 1)  # OneCycleLR's final planned step
    assert last.get_last_lr()[0] == pytest.approx(0.002, rel=1e-6)  # 0.02 / 10 / 1


def test_the_budget_schedule_follows_the_same_end_and_momentum():
    cfg = replace(TINY, optimizer="adamw", lr=0.02, final_div_factor=1.0, cycle_momentum=False)
    schedule = trainer(cfg)._replannable(8)
    for _ in range(8):
        schedule.step()
    assert schedule.get_last_lr()[0] == pytest.approx(0.002, rel=1e-6)
    assert schedule.optimizer.param_groups[0]["betas"][0] == pytest.approx(0.9)
    assert schedule.state_dict()["cycle_momentum"] is False


def test_bf16_autocast_trains_on_the_cpu():
    t = trainer(replace(TINY, precision="bf16", epochs=3, lr=0.1))
    assert t.bf16
    history = t.fit()
    assert all(np.isfinite(h["train_loss"]) for h in history)
    assert all(p.dtype == torch.float32 for p in t.model.parameters())  # master weights stay fp32


def test_precision_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert use_bf16(cpu, "bf16") and not use_bf16(cuda, "fp32") and use_bf16(cuda, "auto")
    with pytest.raises(InvalidTrainConfig, match="precision"):
        validate_train_config(replace(TINY, precision="fp8"))
    with pytest.raises(InvalidTrainConfig, match="mixup_max"):
        validate_train_config(replace(TINY, mixup_max=0.9))


def test_colour_jitter_changes_colours_only_when_on():
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    off = build_pipeline(AugmentConfig(flip_p=0, affine_p=0, dropout_p=0), seed=3)
    on = build_pipeline(AugmentConfig(flip_p=0, affine_p=0, dropout_p=0, color_p=1.0, saturation=0.9), seed=3)
    assert "ColorJitter" not in [type(t).__name__ for t in off.transforms]
    assert not np.array_equal(off(image=image)["image"], on(image=image)["image"])


def test_every_train_setting_has_a_cli_flag():
    from cifar_s9.cli import _train_config, build_parser
    from cifar_s9.train.recipes import get_recipe

    args = build_parser().parse_args(["train", "--recipe", "long", "--mixup-max", "0.3",
                                      "--no-cycle-momentum", "--precision", "bf16", "--teacher", "a",
                                      "--teacher", "b", "--final-div-factor", "4"])
    cfg = _train_config(args, get_recipe("long"))
    assert (cfg.mixup_max, cfg.cycle_momentum, cfg.precision) == (0.3, False, "bf16")
    assert cfg.teachers == ("a", "b") and cfg.final_div_factor == 4.0
    assert cfg.epochs == LONG_TRAIN.epochs  # what is not given stays the recipe's
    dests = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["train"]._actions}
    assert {f.name for f in fields(TrainConfig)} <= dests


def test_native_bf16_is_read_from_the_cpu_flags():
    from cifar_s9.train.precision import cpu_has_bf16

    assert cpu_has_bf16("processor: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 fma\n")
    assert cpu_has_bf16("flags : amx_tile amx_bf16\n")
    assert not cpu_has_bf16("flags : fpu sse2 avx512f avx512bw\n")
    assert not cpu_has_bf16("Features : fp asimd bf16\n")  # ARM's "bf16" is not counted as native here


def test_auto_uses_bf16_on_the_cpu_only_where_it_is_native_and_switched_on(monkeypatch):
    from cifar_s9.train import precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "CPU_BF16_BY_DEFAULT", True)
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.use_bf16(cpu, "auto") and not precision.use_bf16(cpu, "fp32")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)  # emulated bf16 would be slower
    assert not precision.use_bf16(cpu, "auto")
