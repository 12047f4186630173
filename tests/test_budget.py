"""Time-budgeted runs under a fake clock: every training step costs a chosen number of seconds.

The trainer reads time only through its `clock`; here the clock moves only when a step (or an
evaluation) runs, so every plan can be worked out by hand. 64 images in batches of 8: 8 steps
an epoch. The calibration times 3 + 20 steps before the run and counts against the budget.
"""
from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import torch
from synthetic import FakeClock, Recorder, make_split, tiny_config

import cifar_s9.train.trainer as train_module
from cifar_s9.data.augment import NO_AUGMENT
from cifar_s9.train.budget import steps_within_budget
from cifar_s9.train.config import TrainConfig
from cifar_s9.train.events import EpochEvent, StepEvent
from cifar_s9.train.trainer import Trainer

BUDGETED = TrainConfig(epochs=1, batch_size=8, lr=0.05, label_smoothing=0.0, device="cpu",
                       threads=1, workers=0, log_every=1, time_budget_s=60.0)
CALIBRATION_STEPS = 23


@pytest.fixture
def clock(monkeypatch):
    """A fake clock and `clock.cost(n)`: the seconds of the n-th step (1-based, calibration first)."""
    fake = FakeClock()
    fake.steps, fake.cost = 0, lambda n: 0.5
    real_step = Trainer._step

    def step(self, *args, **kwargs):
        fake.steps += 1
        fake.now += fake.cost(fake.steps)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_step", step)
    return fake



def budgeted(tiny_split, clock, callback=None, eval_data=None, **changes) -> Trainer:
    return Trainer(tiny_config(), replace(BUDGETED, **changes), NO_AUGMENT, tiny_split,
                   eval_data=eval_data, callback=callback, clock=clock)


@pytest.mark.parametrize("args, expected", [
    # 60 s budget, 23 s spent, no steps done, 1 s a step, no evaluation: 37 steps
    ((60.0, 23.0, 0, 1.0, 0.0, 8, 1, 8000), 37),
    # evaluations of 3 s after every epoch of 8 steps, 42.5 s left: 48 steps (6 epochs) cost
    # 24 + 6 x 3 = 42; 49 would start a 7th epoch: 24.5 + 7 x 3 = 45.5
    ((60.0, 17.5, 0, 0.5, 3.0, 8, 1, 8000), 48),
    # a partial last epoch pays for its own evaluation only, 40.5 s left: 45 steps (5 epochs
    # and 5 steps) cost 22.5 + 6 x 3 = 40.5; 46 cost 41
    ((58.0, 17.5, 0, 0.5, 3.0, 8, 1, 8000), 45),
    # every 2 epochs, 8 steps done: 64 steps cost 28 + 3 x (epochs 2, 4, 6) + 3 (the last, 8th)
    # = 40 of 42.5; 65 starts a 9th epoch and adds epoch 8's evaluation: 28.5 + 15 = 43.5
    ((60.0, 17.5, 8, 0.5, 3.0, 8, 2, 8000), 64),
    # over budget already: never fewer than the steps done, never fewer than 1
    ((10.0, 20.0, 16, 1.0, 0.0, 8, 1, 8000), 16),
    ((10.0, 20.0, 0, 1.0, 0.0, 8, 1, 8000), 1),
    # the trainer's limit
    ((1e9, 0.0, 0, 1.0, 0.0, 8, 1, 8000), 8000),
])
def test_steps_within_budget_by_hand(args, expected):
    assert steps_within_budget(*args) == expected


def test_a_slow_first_epoch_then_fast_ones_fills_the_budget(tiny_split, clock):
    # calibration and epoch 1 at 1 s a step, then 0.25 s. By hand, (60 s budget):
    #   calibration 23 s -> plan (60 - 23) / 1 = 37 steps (the old planner stopped about here)
    #   epoch 1 (8 s, t=31): median 1.0 -> 8 + 29 = 37;  epoch 2 (2 s, t=33): median(1, .25)
    #   = .625 -> 16 + 43 = 59;  epoch 3 (t=35): median .25 -> 24 + 100 = 124, and 124 from
    #   then on: 15 whole epochs and a last one of 4 steps, ending at 35 + 100 * .25 = 60 s
    clock.cost = lambda n: 1.0 if n <= CALIBRATION_STEPS + 8 else 0.25
    rec = Recorder()
    trainer = budgeted(tiny_split, clock, callback=rec)
    assert trainer.total_steps == 37 and trainer.epochs == 5
    history = trainer.fit()
    assert trainer.total_steps == 124 and trainer.steps_done == 124
    assert clock.now == pytest.approx(60.0)  # >= 95% of the budget, no overrun
    assert [h["epoch"] for h in history] == list(range(1, 17)) and trainer.epochs == 16
    assert trainer.cfg == replace(BUDGETED)  # the plan is run state: the settings never change
    assert [h["epochs"] for h in history][:4] == [5, 8, 16, 16]
    assert len(rec.of(StepEvent)) == 124  # one per step: the partial last epoch has 4
    # the learning rate rose to its peak once, then only fell, to the schedule's final value
    lrs = [e.lr for e in rec.of(StepEvent)]
    peak = lrs.index(max(lrs))
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1:peak + 1]))
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))
    assert max(lrs) > 0.9 * BUDGETED.lr and lrs[-1] == pytest.approx(BUDGETED.lr / 1000)


def test_an_epoch_slower_than_planned_overruns_by_at_most_its_share(tiny_split, clock):
    # steady 0.5 s a step, but the 9th epoch's steps take 1 s: the plan (77 steps, below) made
    # after epoch 8 cannot know, and the run overruns by that epoch's extra 4 s, no more
    slow = range(CALIBRATION_STEPS + 64 + 1, CALIBRATION_STEPS + 72 + 1)
    clock.cost = lambda n: 1.0 if n in slow else 0.5
    trainer = budgeted(tiny_split, clock, time_budget_s=50.0)
    trainer.fit()
    assert 50.0 < clock.now <= 50.0 + 8 * 0.5
    assert clock.now / 50.0 <= 1.08


def test_a_steady_speed_keeps_the_first_plan(tiny_split, clock):
    # 0.5 s a step: calibration 11.5 s, then (50 - 11.5) / 0.5 = 77 steps, re-planned to 77
    # after every epoch: 9 epochs and 5 steps, ending exactly at the budget
    trainer = budgeted(tiny_split, clock, time_budget_s=50.0)
    assert trainer.total_steps == 77
    history = trainer.fit()
    assert trainer.steps_done == 77 and len(history) == 10 and clock.now == pytest.approx(50.0)


def test_evaluations_are_planned_for(tiny_split, clock, monkeypatch):
    # 0.5 s a step, each test evaluation 3 s (the calibration times two: warm-up, then timed):
    # 11.5 + 6 = 17.5 s spent, then 48 steps (table above); after each epoch the coming
    # evaluation counts as spent and the plan stays at 48: 6 epochs, 6 evaluations, ending at
    # 17.5 + 24 + 18 = 59.5 s
    real_predict = train_module.predict_logits

    def predict(*args, **kwargs):
        clock.now += 3.0
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(train_module, "predict_logits", predict)
    trainer = budgeted(tiny_split, clock, eval_data=make_split(20, seed=5))
    assert trainer.total_steps == 48
    history = trainer.fit()
    assert trainer.total_steps == 48 and len(history) == 6
    assert all(h["eval_acc"] is not None and h["eval_split"] == "test" for h in history)
    assert clock.now == pytest.approx(59.5) and clock.now / 60.0 >= 0.95


def test_a_budget_too_small_for_one_epoch_trains_part_of_one(tiny_split, clock):
    # (14 - 11.5) / 0.5 = 5 steps of the 8 in an epoch, with the whole one-cycle schedule
    rec = Recorder()
    trainer = budgeted(tiny_split, clock, callback=rec, time_budget_s=14.0)
    history = trainer.fit()
    assert trainer.steps_done == 5 and trainer.epoch == 1 and len(history) == 1
    assert clock.now == pytest.approx(14.0)
    assert rec.of(EpochEvent)[0].epochs == 1
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(BUDGETED.lr / 1000)
    # a budget the calibration alone spends still trains one step, not zero
    tiny = budgeted(tiny_split, clock, time_budget_s=1.0)
    tiny.fit()
    assert tiny.steps_done == 1


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_budgeted_run_resumes_bit_for_bit(tiny_split, clock, tmp_path):
    # 0.5 s a step and 50 s: 77 steps. Stopped after epoch 3 and resumed, the rest of the plan
    # runs as it stood (a resumed run has no budget left to measure) and ends where one
    # uninterrupted run ends, to the bit
    straight = budgeted(tiny_split, clock, time_budget_s=50.0)
    straight.fit()
    clock.now, clock.steps = 0.0, 0
    stop = threading.Event()
    stop_after_three = lambda e: stop.set() if isinstance(e, EpochEvent) and e.epoch == 3 else None  # noqa: E731
    first = budgeted(tiny_split, clock, callback=stop_after_three, time_budget_s=50.0)
    first.fit(stop, checkpoint=tmp_path / "r.pt")
    assert first.epoch == 3 and first.steps_done == 24
    torch.manual_seed(4321)
    resumed = Trainer.resume(tmp_path / "r.pt", tiny_split)
    assert resumed.total_steps == 77 and resumed.epochs == 10 and resumed.steps_done == 24
    assert resumed.scheduler.get_last_lr() == first.scheduler.get_last_lr()
    resumed.fit()
    assert resumed.steps_done == 77 and len(resumed.history) == 10
    assert_same_state(resumed.model.state_dict(), straight.model.state_dict())
    assert [h["lr"] for h in resumed.history] == [h["lr"] for h in straight.history]


def test_a_budgeted_checkpoint_resumed_with_more_epochs_stretches_the_rest(tiny_split, clock, tmp_path):
    trainer = budgeted(tiny_split, clock, time_budget_s=14.0)  # 5 steps, one partial epoch
    trainer.fit(checkpoint=tmp_path / "r.pt")
    lr_at_end = trainer.scheduler.get_last_lr()[0]
    resumed = Trainer.resume(tmp_path / "r.pt", tiny_split)
    assert resumed.total_steps == 5 and resumed.epochs == 1
    resumed.fit()
    assert resumed.steps_done == 5  # nothing left
    # a checkpoint in the middle of the annealing, stretched to 3 epochs: no jump in the rate
    mid = budgeted(tiny_split, clock, time_budget_s=50.0)  # 77 steps
    stop = threading.Event()
    mid.callback = lambda e: stop.set() if isinstance(e, EpochEvent) and e.epoch == 2 else None
    mid.fit(stop, checkpoint=tmp_path / "m.pt")
    lr_before = mid.scheduler.get_last_lr()[0]
    longer = Trainer.resume(tmp_path / "m.pt", tiny_split, epochs=12)
    assert longer.total_steps == 96 and longer.scheduler.get_last_lr()[0] == lr_before
    longer.fit()
    assert longer.steps_done == 96 and longer.scheduler.get_last_lr()[0] == pytest.approx(lr_at_end)
    with pytest.raises(ValueError, match="already trained 2 epochs"):
        Trainer.resume(tmp_path / "m.pt", tiny_split, epochs=1)
