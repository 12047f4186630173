"""A/B experiments on synthetic data: the runner, its budget rule, its result table and words."""
from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np
import pytest
from synthetic import make_split

from cifar_s9.experiments import tracker
from cifar_s9.data.augment import NO_AUGMENT, AugmentConfig
from cifar_s9.experiments.runner import (SAMPLE_WARNING, Arm, ArmRun, ExperimentConfig, ExperimentResult,
                                  experiment_data, no_dropout_question, recipe_default_question,
                                  run_experiment)
from cifar_s9.train.recipes import LAB_TRAIN, get_recipe
from cifar_s9.train.events import EpochEvent

TINY_TRAIN = replace(LAB_TRAIN, batch_size=16, threads=1, log_every=1000)


def tiny(question=no_dropout_question, **budget) -> ExperimentConfig:
    budget = {"train": TINY_TRAIN, "subset": 48, "epochs": 2, "minutes": None, **budget}
    return question(AugmentConfig(dropout_p=0.8), **budget)


def test_questions_differ_only_in_what_they_ask():
    cfg = tiny()
    off, on = cfg.arms
    assert off.aug == replace(on.aug, dropout_p=0.0) and on.aug.dropout_p == 0.8
    rec = tiny(recipe_default_question)
    assert rec.arms[0].aug == get_recipe("full").aug and rec.arms[1].aug.dropout_p == 0.8


@pytest.mark.parametrize("change, message", [
    ({"arms": (Arm("a"),)}, "2 to 4 arms"),
    ({"arms": (Arm("a"), Arm("a"))}, "distinct"),
    ({"epochs": None}, "either epochs or minutes"),
    ({"minutes": 3.0}, "either epochs or minutes"),
    ({"epochs": 0}, "epochs must be"),
    ({"repeats": 6}, "repeats must be"),
    ({"subset": 0}, "subset"),
])
def test_invalid_configs_are_refused_before_training(change, message):
    with pytest.raises(ValueError, match=message):
        replace(tiny(), **change).validated()


def test_bad_augmentation_in_an_arm_is_refused():
    with pytest.raises(ValueError, match="dropout_p"):
        ExperimentConfig((Arm("a"), Arm("b", AugmentConfig(dropout_p=2.0))), epochs=1, minutes=None).validated()


def test_two_arms_train_on_the_same_images_and_are_scored_on_the_same_images():
    train, evaluation = make_split(64, seed=0), make_split(40, seed=1)
    events, finished = [], []
    result = run_experiment(tiny(repeats=2, epochs=1), train, evaluation, track=False,
                            progress=lambda m, run, e: (events.append((m, e)) if isinstance(e, EpochEvent)
                                                        else finished.append(run) if run else None))
    assert result.complete and result.planned_epochs == 1
    # seed-major order: A(seed 0), B(seed 0), A(seed 1), B(seed 1)
    assert [(r.arm, r.seed) for r in result.runs] == [("no Coarse Dropout", 0), ("current settings", 0),
                                                      ("no Coarse Dropout", 1), ("current settings", 1)]
    assert all(r.correct.shape == (40,) and r.epochs == 1 and len(r.history) == 1 for r in result.runs)
    # curves score the first curve_images (here all 40) after each epoch; the final score all of them
    assert all(r.accuracy.value == pytest.approx(r.history[-1]["eval_acc"]) for r in result.runs)
    assert len(events) == 4 and finished == result.runs
    rows = result.table()
    assert [r["arm"] for r in rows] == ["no Coarse Dropout", "current settings"]
    assert all(r["seeds"] == 2 and r["images"] == 40 and r["ci_low"] <= r["accuracy"] <= r["ci_high"]
               for r in rows)
    words = result.verdicts()
    assert len(words) == 2 and "McNemar on 40 images" in words[0] and words[1].startswith("Over 2 seeds")
    assert any("Short runs favour weak augmentation" in w for w in result.warnings())


def test_a_minutes_budget_fixes_one_epoch_count_for_every_arm():
    train, evaluation = make_split(96, seed=0), make_split(20, seed=1)
    result = run_experiment(tiny(epochs=None, minutes=0.1), train, evaluation, track=False)
    assert result.planned_epochs >= 1
    assert {r.epochs for r in result.runs} == {result.planned_epochs}


def test_stop_keeps_what_finished():
    stop = threading.Event()

    def progress(message, run, event):
        if run is not None:
            stop.set()  # stop as soon as the first arm finishes

    result = run_experiment(tiny(), make_split(64), make_split(20, seed=1), track=False, stop=stop,
                            progress=progress)
    assert [r.arm for r in result.runs] == ["no Coarse Dropout"] and not result.complete
    assert result.verdicts() == []


def test_arms_are_recorded_in_the_tracker_with_checkpoints():
    result = run_experiment(tiny(epochs=1, curve_images=10), make_split(64), make_split(20, seed=1))
    names = [r.run_name for r in result.runs]
    # the curve scored 10 images after each epoch; the final score covers all 20
    assert all(r.correct.shape == (20,) and (10 * r.history[-1]["eval_acc"]) % 1 < 1e-6 for r in result.runs)
    listed = {r.name: r for r in tracker.list_runs()}
    for run in result.runs:
        rec = listed[run.run_name]
        assert rec.config["arm"] == run.arm and rec.config["source"] == "experiment"
        assert rec.final["accuracy"] == pytest.approx(run.accuracy.value) and rec.checkpoint_exists
    assert listed[names[0]].group == listed[names[1]].group  # one experiment, one group


def _fake_result(meaningless: bool, epochs: int) -> ExperimentResult:
    cfg = ExperimentConfig((Arm("A", NO_AUGMENT), Arm("B")), epochs=epochs, minutes=None)
    a = np.array([1] * 800 + [1] * 20 + [0] * 50 + [0] * 130, bool)
    b = np.array([1] * 800 + [0] * 20 + [1] * 50 + [0] * 130, bool)
    res = ExperimentResult(cfg, "fake", "", meaningless, planned_epochs=epochs)
    res.runs = [ArmRun("A", 0, epochs, [], a, 1.0, 1.0), ArmRun("B", 0, epochs, [], b, 1.0, 1.0)]
    return res


def test_result_words_and_warnings():
    res = _fake_result(meaningless=False, epochs=40)
    assert res.warnings() == []
    assert res.verdicts()[0].startswith("B is 3.0 points better than A (95% CI ")
    rows = res.table()
    assert rows[0]["accuracy"] == pytest.approx(0.82) and rows[1]["accuracy"] == pytest.approx(0.85)
    sample = _fake_result(meaningless=True, epochs=5)
    assert sample.warnings()[0] == SAMPLE_WARNING and "Short runs" in sample.warnings()[1]


def test_without_the_dataset_the_sample_is_used_and_flagged(no_data_env, tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR_S9_CACHE", str(tmp_path))
    data = experiment_data(None, allow_download=False)
    assert data.demo_only and len(data.train) == 400 and len(data.evaluation) == 100


def test_with_a_dataset_every_arm_is_scored_on_the_validation_split(dataset_dir, tmp_path):
    from cifar_s9.data.cifar import ValidationSpec
    data = experiment_data(dataset_dir, ValidationSpec(per_class=1), )
    assert not data.demo_only and len(data.evaluation) == 10 and len(data.train) == 30
    assert data.evaluation.source.endswith("train, validation 1/class seed 0")
