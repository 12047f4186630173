"""Distillation and fine-tuning: the loss by hand, the frozen teacher, and a student that learns
from a teacher alone."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from synthetic import make_split, tiny_config

from cifar_s9.data.augment import NO_AUGMENT
from cifar_s9.records.checkpoint import CheckpointError, load_resume, load_weights, save_weights
from cifar_s9.data.cifar import Split
from cifar_s9.train.distill import Teacher
from cifar_s9.analysis.evaluate import evaluate
from cifar_s9.train.losses import distillation_loss, ensemble_soft_targets, soft_cross_entropy
from cifar_s9.model.net import build_model
from cifar_s9.train.config import InvalidTrainConfig, TrainConfig
from cifar_s9.train.trainer import Trainer

TINY = TrainConfig(epochs=2, batch_size=16, lr=0.05, label_smoothing=0.0, device="cpu",
                   threads=1, workers=0, log_every=1)
LN3 = math.log(3.0)


def test_ensemble_soft_targets_by_hand():
    # softmax([0, ln 3]) = [1/4, 3/4]; the two teachers disagree symmetrically, so the mean is even
    a, b = torch.tensor([[0.0, LN3]]), torch.tensor([[LN3, 0.0]])
    torch.testing.assert_close(ensemble_soft_targets([a], 1.0), torch.tensor([[0.25, 0.75]]))
    torch.testing.assert_close(ensemble_soft_targets([a, b], 1.0), torch.tensor([[0.5, 0.5]]))
    # temperature 2 halves the logits: [0, 2 ln 3] / 2 gives [1/4, 3/4] again
    torch.testing.assert_close(ensemble_soft_targets([2 * a], 2.0), torch.tensor([[0.25, 0.75]]))


def test_distillation_loss_by_hand():
    student = torch.tensor([[0.0, 0.0]])  # probabilities [1/2, 1/2] at any temperature
    teacher = torch.tensor([[0.25, 0.75]])
    labels = torch.tensor([[1.0, 0.0]])
    kl = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)  # 0.1308
    assert distillation_loss(student, labels, teacher, 1.0, 2.0).item() == pytest.approx(4 * kl)
    assert distillation_loss(student, labels, teacher, 0.0, 2.0).item() == pytest.approx(math.log(2))
    mixed = 0.3 * math.log(2) + 0.7 * 4 * kl
    assert distillation_loss(student, labels, teacher, 0.7, 2.0).item() == pytest.approx(mixed)


def test_distillation_loss_is_zero_and_flat_where_the_student_matches_the_teacher():
    student = torch.randn(5, 10, requires_grad=True)
    teacher = F.softmax(student.detach() / 3.0, dim=1)
    loss = distillation_loss(student, torch.zeros(5, 10), teacher, 1.0, 3.0)
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert student.grad.abs().max().item() < 1e-6


def test_alpha_zero_is_the_label_loss():
    student, labels = torch.randn(4, 10), F.one_hot(torch.tensor([1, 2, 3, 4]), 10).float()
    teacher = torch.full((4, 10), 0.1)
    torch.testing.assert_close(distillation_loss(student, labels, teacher, 0.0, 4.0),
                               soft_cross_entropy(student, labels))


@pytest.fixture
def trained_teacher(tiny_split, tmp_path, deterministic):
    """A tiny residual network that has learnt the colour code, saved as safetensors (the plain
    stack learns it too slowly for a margin that holds on every CPU; this one scored 0.9-1.0 on 9
    seeds measured)."""
    trainer = Trainer(tiny_config(residual=True), replace(TINY, epochs=30, lr=0.1), NO_AUGMENT, tiny_split)
    trainer.fit()
    path = tmp_path / "teacher.safetensors"
    save_weights(trainer.model, path, {"recipe": "test"})
    assert evaluate(load_weights(path)[0], make_split(40, seed=9), "cpu").accuracy > 0.6
    return path


def test_teacher_is_frozen_in_inference_mode(trained_teacher):
    teacher = Teacher((str(trained_teacher), str(trained_teacher)), torch.device("cpu"))
    assert len(teacher.models) == 2
    assert all(not m.training and not any(p.requires_grad for p in m.parameters()) for m in teacher.models)
    x = torch.rand(3, 3, 32, 32)
    probs = teacher.soft_targets(x, 4.0)
    assert probs.shape == (3, 10) and not probs.requires_grad
    torch.testing.assert_close(probs.sum(1), torch.ones(3))
    # BatchNorm uses its running statistics: one image scores the same alone as in a batch
    torch.testing.assert_close(teacher.soft_targets(x[:1], 4.0), probs[:1])


@pytest.mark.usefixtures("deterministic")
def test_a_student_learns_from_the_teacher_alone(trained_teacher, tiny_split):
    # The student's labels are shuffled, so only the teacher knows the colour code: with
    # alpha = 1 the student must learn it from the teacher; without a teacher it cannot. A
    # residual student, for a margin that holds on any CPU (issue 23): 0.9-1.0 on 9 seeds
    # measured, where the plain stack scored 0.4-1.0 against a threshold of 0.3.
    rng = np.random.default_rng(3)
    wrong = Split(tiny_split.images, rng.permutation(tiny_split.labels), "shuffled")
    test = make_split(200, seed=9)
    cfg = replace(TINY, epochs=30, lr=0.1, seed=1)
    distil = replace(cfg, teachers=(str(trained_teacher),), distill_alpha=1.0, distill_temperature=1.0)
    student = Trainer(tiny_config(residual=True), distil, NO_AUGMENT, wrong)
    student.fit()
    alone = Trainer(tiny_config(residual=True), cfg, NO_AUGMENT, wrong)
    alone.fit()
    learnt, unaided = evaluate(student.model, test, "cpu").accuracy, evaluate(alone.model, test, "cpu").accuracy
    # chance is 0.1; the student knows most of the ten colours, and far more than the unaided net
    assert learnt >= 0.7 and learnt - unaided >= 0.4, (learnt, unaided)
    teacher_state = load_weights(trained_teacher)[0].state_dict()
    for k, v in student.teacher.models[0].state_dict().items():  # training never touched the teacher
        assert torch.equal(v, teacher_state[k]), k


def test_init_weights_start_the_network_from_the_file(trained_teacher, tiny_split):
    trainer = Trainer(tiny_config(residual=True), replace(TINY, init_weights=str(trained_teacher), ema_decay=0.99),
                      NO_AUGMENT, tiny_split)
    saved = load_weights(trained_teacher)[0].state_dict()
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, saved[k]), k
    assert trainer.ema is not None  # the averaged copy starts from the file too
    assert torch.equal(trainer.ema.module.state_dict()["head.classifier.weight"], saved["head.classifier.weight"])


def test_init_weights_of_another_architecture_are_refused(tiny_split, tmp_path):
    other = tmp_path / "default.safetensors"
    save_weights(build_model("default"), other, {})
    with pytest.raises(CheckpointError, match="different architecture"):
        Trainer(tiny_config(), replace(TINY, init_weights=str(other)), NO_AUGMENT, tiny_split)


@pytest.mark.parametrize("changes, words", [
    ({"teachers": ("nowhere.safetensors",)}, "no weights file at nowhere.safetensors"),
    ({"init_weights": "missing.safetensors"}, "no weights file at missing.safetensors"),
    ({"distill_alpha": 1.5}, "distill_alpha must be in [0.0, 1.0]"),
    ({"distill_temperature": 0.0}, "distill_temperature must be in [0.1, 100.0]"),
])
def test_bad_distillation_settings_are_refused(tiny_split, changes, words):
    with pytest.raises(InvalidTrainConfig) as err:
        Trainer(tiny_config(), replace(TINY, **changes), NO_AUGMENT, tiny_split)
    assert words in str(err.value)


def test_a_distilled_run_resumes_with_its_teachers(trained_teacher, tiny_split, tmp_path):
    cfg = replace(TINY, epochs=1, teachers=(str(trained_teacher),), distill_alpha=0.5)
    Trainer(tiny_config(), cfg, NO_AUGMENT, tiny_split).fit(checkpoint=tmp_path / "resume.pt")
    assert load_resume(tmp_path / "resume.pt")["train_config"]["teachers"] == (str(trained_teacher),)
    resumed = Trainer.resume(tmp_path / "resume.pt", tiny_split, epochs=2)
    assert resumed.cfg.teachers == (str(trained_teacher),) and resumed.teacher is not None
    resumed.fit()
    assert resumed.epoch == 2


def test_train_config_round_trips_teachers_through_json():
    cfg = TrainConfig(teachers=("a.safetensors", "b.safetensors"), init_weights="c.safetensors")
    as_json = {**cfg.to_dict(), "teachers": ["a.safetensors", "b.safetensors"]}
    assert TrainConfig.from_dict(as_json) == cfg
