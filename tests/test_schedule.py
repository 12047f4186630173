"""The re-plannable one-cycle schedule: hand-worked values, fixed-length pace, re-plans."""
from __future__ import annotations

import math

import pytest
import torch

from cifar_s9.train.schedule import ReplannableOneCycle, next_progress, one_cycle


def sgd(lr: float = 1.0) -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9, nesterov=True)


@pytest.mark.parametrize("progress, lr, momentum", [
    (0.0, 0.1, 0.95),                  # starts at max_lr / div_factor, momentum high
    (0.125, (0.1 + 1.0) / 2, 0.90),    # half-way through a 0.25 warm-up: cos(pi/2) = 0
    (0.25, 1.0, 0.85),                 # the peak, momentum low
    (0.625, (1.0 + 1e-3) / 2, 0.90),   # half-way through the annealing
    (1.0, 1e-3, 0.95),                 # ends at max_lr / 10 / 100
])
def test_one_cycle_by_hand(progress, lr, momentum):
    got_lr, got_momentum = one_cycle(progress, max_lr=1.0, pct_start=0.25)
    assert got_lr == pytest.approx(lr) and got_momentum == pytest.approx(momentum)


def test_a_fixed_length_moves_progress_by_one_step_in_total():
    progress = 0.0
    for k in range(10):
        progress = next_progress(progress, k, 10)
        assert progress == pytest.approx((k + 1) / 10, abs=1e-12)
    assert progress == 1.0


def test_a_replan_keeps_the_rate_continuous_monotone_and_ending_at_its_final_value():
    # 20 steps planned; at step 12 (annealing) the plan grows to 40, at step 30 shrinks to 33
    opt = sgd()
    schedule = ReplannableOneCycle(opt, max_lr=1.0, total_steps=20, pct_start=0.25)
    lrs = [schedule.get_last_lr()[0]]
    for step in range(33):
        if step == 12:
            schedule.replan(40)
        if step == 30:
            schedule.replan(33)
        schedule.step()
        lrs.append(schedule.get_last_lr()[0])
    peak = lrs.index(max(lrs))
    assert peak == 5 and lrs[peak] == pytest.approx(1.0)  # 20 * 0.25 steps of warm-up
    assert all(a < b for a, b in zip(lrs[:peak], lrs[1:peak + 1]))
    assert all(a > b for a, b in zip(lrs[peak:], lrs[peak + 1:]))  # no jump back up
    assert lrs[-1] == pytest.approx(1e-3) and schedule.progress == 1.0
    # after the first re-plan, each of the 28 steps left covers an equal share of what was left
    assert lrs[13] == pytest.approx(one_cycle(0.6 + 0.4 / 28, 1.0, 0.25)[0])
    with pytest.raises(ValueError, match="past the planned 33"):
        schedule.step()
    with pytest.raises(ValueError, match="33 are already done"):
        schedule.replan(32)


def test_momentum_follows_the_cycle_and_state_round_trips():
    opt = sgd()
    schedule = ReplannableOneCycle(opt, max_lr=0.5, total_steps=8, pct_start=0.25)
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.95)
    for _ in range(2):
        schedule.step()
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.85)  # at the peak
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
    state = schedule.state_dict()
    other_opt = sgd()
    other = ReplannableOneCycle(other_opt, max_lr=9.0, total_steps=1, pct_start=0.5)
    other.load_state_dict(state)
    for _ in range(6):
        schedule.step()
        other.step()
        assert other.get_last_lr() == schedule.get_last_lr()  # exactly, not approximately
    adam = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], betas=(0.9, 0.999))
    ReplannableOneCycle(adam, max_lr=0.5, total_steps=8, pct_start=0.25)
    assert adam.param_groups[0]["betas"] == (pytest.approx(0.95), 0.999)


def test_a_one_step_schedule():
    opt = sgd()
    schedule = ReplannableOneCycle(opt, max_lr=1.0, total_steps=1, pct_start=0.25)
    schedule.step()
    assert schedule.get_last_lr()[0] == pytest.approx(1e-3) and math.isfinite(schedule.progress)
    with pytest.raises(ValueError, match="at least 1"):
        ReplannableOneCycle(opt, max_lr=1.0, total_steps=0, pct_start=0.25)
