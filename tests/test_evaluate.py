"""Evaluation maths on hand-made labels and on models whose outputs we know."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from synthetic import make_split, tiny_config
from torch import nn

from cifar_s9.data.cifar import CLASSES, MEAN, STD, Split
from cifar_s9.analysis.evaluate import (Evaluation, confusion_matrix, evaluate, evaluate_ensemble, mistakes,
                               predict_logits)
from cifar_s9.model.net import Net


class FirstRow(nn.Module):
    """Logits = the first 10 pixels of the red channel's first row (so a flip changes them)."""

    def forward(self, x):
        return x[:, 0, 0, :10]


class Oracle(nn.Module):
    """Predicts the class written into pixel (0, 0) of the red channel as value 20*class."""

    def forward(self, x):
        red = x[:, 0, 0, 0] * STD[0] + MEAN[0]                 # undo the normalisation
        cls = torch.round(red * 255 / 20).long().clamp(0, 9)
        return nn.functional.one_hot(cls, 10).float() * 4.0   # confident, not certain


def oracle_split(labels, predictions) -> Split:
    images = np.zeros((len(labels), 32, 32, 3), np.uint8)
    images[:, 0, 0, 0] = np.asarray(predictions) * 20
    return Split(images, np.asarray(labels, np.int64), "hand-made")


def test_confusion_matrix_by_hand():
    labels = np.array([0, 0, 1, 2, 2, 2])
    preds = np.array([0, 1, 1, 2, 0, 2])
    m = confusion_matrix(labels, preds, num_classes=3)
    assert m.tolist() == [[1, 1, 0],   # true 0: one right, one called 1
                          [0, 1, 0],   # true 1: right
                          [1, 0, 2]]   # true 2: two right, one called 0
    assert confusion_matrix(labels, preds).shape == (10, 10)
    assert confusion_matrix(labels, preds).sum() == 6


def test_predict_logits_tta_averages_with_the_mirror():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    x = (images[..., 0].astype(np.float32) / 255 - MEAN[0]) / STD[0]  # normalised red channel
    plain = predict_logits(FirstRow(), images)
    np.testing.assert_allclose(plain.numpy(), x[:, 0, :10], atol=1e-5)
    tta = predict_logits(FirstRow(), images, tta=True)
    # flipped row's first ten pixels are columns 31, 30, ..., 22 of the original
    np.testing.assert_allclose(tta.numpy(), (x[:, 0, :10] + x[:, 0, 31:21:-1]) / 2, atol=1e-5)


def test_predict_logits_six_view_tta_by_hand():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    x = (images[..., 0].astype(np.float32) / 255 - MEAN[0]) / STD[0]
    r0, r1 = x[:, 0], x[:, 1]  # a one-pixel shift either way shows row 1 in the first row
    # up-left view: padded[0:32, 0:32], its first row is row 1 with column 0 mirrored (1, 0, 1, ..., 8)
    up_left = r1[:, [1] + list(range(0, 9))]
    up_left_flipped = r1[:, list(range(30, 20, -1))]
    # down-right view: padded[2:34, 2:34], columns 1..31 then 30 mirrored
    down_right = r1[:, list(range(1, 11))]
    down_right_flipped = r1[:, [30, 31] + list(range(30, 22, -1))]
    expected = ((r0[:, :10] + r0[:, 31:21:-1]) / 2 / 2 + (up_left + up_left_flipped) / 2 / 4
                + (down_right + down_right_flipped) / 2 / 4)
    got = predict_logits(FirstRow(), images, tta="flip-shift")
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)
    with pytest.raises(ValueError, match="tta must be"):
        predict_logits(FirstRow(), images, tta="rotate")


def test_predict_logits_batches_and_restores_training_mode():
    images = make_split(7).images
    model = FirstRow().train()
    whole = predict_logits(model, images)
    assert model.training
    torch.testing.assert_close(predict_logits(model, images, batch_size=3), whole)
    assert predict_logits(Net(tiny_config()), images[:0]).shape == (0, 10)  # the config's class count


def test_evaluate_with_known_predictions():
    labels = [0, 0, 1, 2, 2, 2, 9, 9]
    preds = [0, 1, 1, 2, 0, 2, 9, 3]
    ev = evaluate(Oracle(), oracle_split(labels, preds))
    assert ev.n == 8 and not ev.tta
    assert ev.accuracy == pytest.approx(5 / 8)
    assert ev.predictions.tolist() == preds
    assert ev.per_class_accuracy["airplane"] == pytest.approx(0.5)
    assert ev.per_class_accuracy["automobile"] == 1.0
    assert ev.per_class_accuracy["bird"] == pytest.approx(2 / 3)
    assert ev.per_class_accuracy["truck"] == 0.5
    assert math.isnan(ev.per_class_accuracy["cat"])  # no cats in this split
    assert ev.confusion[9, 3] == 1 and ev.confusion[2, 0] == 1 and ev.confusion.sum() == 8
    np.testing.assert_allclose(ev.probabilities.sum(1), 1.0, atol=1e-6)
    # loss of a correct prediction with logit 4 among ten: log(e^4 + 9) - 4
    right, wrong = math.log(math.exp(4) + 9) - 4, math.log(math.exp(4) + 9)
    assert ev.loss == pytest.approx((5 * right + 3 * wrong) / 8, rel=1e-5)
    summary = ev.summary()
    assert set(summary) == {"accuracy", "loss", "n", "tta", "per_class_accuracy"}
    assert list(summary["per_class_accuracy"]) == list(CLASSES)


def test_evaluate_a_real_network_on_a_tiny_split():
    torch.manual_seed(0)
    split = make_split(30)
    ev = evaluate(Net(tiny_config()), split, tta=True)
    assert ev.tta and ev.n == 30
    assert 0.0 <= ev.accuracy <= 1.0 and math.isfinite(ev.loss)
    assert ev.confusion.sum() == 30 and ev.confusion.sum(1).tolist() == [3] * 10
    assert ev.accuracy == pytest.approx(np.trace(ev.confusion) / 30)


class Lookup(nn.Module):
    """Returns row i of `probs` (as log-probabilities) for the image whose pixel (0, 0) says i."""

    def __init__(self, probs: dict[int, dict[int, float]]):
        super().__init__()
        table = torch.full((len(probs), 10), 1e-4)
        for i, ps in probs.items():
            for c, p in ps.items():
                table[i, c] = p
        self.register_buffer("log_probs", table.log())

    def forward(self, x):
        return self.log_probs[Oracle()(x).argmax(1)]


def test_ensemble_averages_probabilities_by_hand():
    # labels 0 1 2 3; each network is right twice, the average of their probabilities three times
    #          A                  B                  mean              verdict
    # image 0  p0 .9              p0 .4 (p5 .6)      p0 .65            right
    # image 1  p1 .9              p1 .4 (p5 .6)      p1 .65            right
    # image 2  p2 .45 (p5 .55)    p2 .9              p2 .675           right
    # image 3  p3 .1 (p5 .9)      p3 .6 (p5 .4)      p3 .35, p5 .65    wrong
    a = Lookup({0: {0: .9}, 1: {1: .9}, 2: {2: .45, 5: .55}, 3: {3: .1, 5: .9}})
    b = Lookup({0: {0: .4, 5: .6}, 1: {1: .4, 5: .6}, 2: {2: .9}, 3: {3: .6, 5: .4}})
    split = oracle_split([0, 1, 2, 3], [0, 1, 2, 3])  # pixel (0, 0) holds the image's index
    ev = evaluate_ensemble([a, b], split)
    assert ev.members == [0.5, 0.5] and ev.n == 4
    assert ev.accuracy == 0.75
    assert evaluate_ensemble([a], split).accuracy == 0.5  # an ensemble of one is the network


@pytest.fixture
def hand_made() -> Evaluation:
    #          label  predicted (argmax)  p(predicted)  p(true)
    # 0        0      0                   right
    # 1        1      3                   0.6           0.3
    # 2        1      3                   0.9           0.05
    # 3        2      0                   0.5           0.4
    # 4        3      3                   right
    # 5        1      0                   0.7           0.2
    probs = np.full((6, 10), 0.0)
    rows = [(0, {0: 0.9, 1: 0.1}), (1, {3: 0.6, 1: 0.3, 5: 0.1}), (2, {3: 0.9, 1: 0.05, 4: 0.05}),
            (3, {0: 0.5, 2: 0.4, 7: 0.1}), (4, {3: 0.8, 0: 0.2}), (5, {0: 0.7, 1: 0.2, 2: 0.1})]
    for i, ps in rows:
        for c, p in ps.items():
            probs[i, c] = p
    labels = np.array([0, 1, 1, 2, 3, 1])
    cm = confusion_matrix(labels, probs.argmax(1))
    return Evaluation(2 / 6, 1.0, 6, {}, cm, probs, labels, False)  # rows 0 and 4 are right


def test_mistakes_sorted_by_confidence(hand_made):
    found = mistakes(hand_made)
    assert [m.index for m in found] == [2, 5, 1, 3]  # 0.9, 0.7, 0.6, 0.5
    assert [(m.true, m.predicted) for m in found] == [(1, 3), (1, 0), (1, 3), (2, 0)]
    assert found[0].confidence == pytest.approx(0.9) and found[0].true_probability == pytest.approx(0.05)
    ascending = mistakes(hand_made, sort="confidence_asc")
    assert [m.index for m in ascending] == [3, 1, 5, 2]


def test_mistakes_filters_and_limit(hand_made):
    assert [m.index for m in mistakes(hand_made, true_class=1)] == [2, 5, 1]
    assert [m.index for m in mistakes(hand_made, predicted_class=0)] == [5, 3]
    assert [m.index for m in mistakes(hand_made, true_class=1, predicted_class=3)] == [2, 1]
    assert mistakes(hand_made, true_class=0) == []      # the airplane was right
    assert mistakes(hand_made, true_class=9) == []
    assert [m.index for m in mistakes(hand_made, limit=2)] == [2, 5]
    assert len(mistakes(hand_made, limit=0)) == 0
