"""What the app says a model scores and how long it trained (issue 26.4), as hand-checked
strings: every accuracy names the images it counts; the card's keys become words."""
import pytest

from cifar_s9.analysis import report
from cifar_s9.app import texts

SHIPPED_CARD = {  # the shipped card's shape (its numbers, its folder names)
    "accuracy": {"test": {"data": "image folder ../shared/data/cifar10-jpeg/test", "n": 10000,
                          "plain": 0.9032, "tta": 0.9037},
                 "clean_check": {"data": "image folder ../shared/data/cifar10-clean-check", "n": 2000,
                                 "plain": 0.91, "tta": 0.9135}},
    "wall_time_s": 18563.9, "receptive_field": 81, "params": 190000, "epochs": 209,
    "train_data": {"source": "offline JPEG copy of CIFAR-10 (quality 75), 46,000 training images", "n": 46000},
    "train_config": {"lr": 0.02}, "aug_config": {"flip_p": 0.5}}


@pytest.mark.parametrize("seconds, words", [(0, "0 s"), (42.4, "42 s"), (59.6, "1 min 00 s"),
                                            (185, "3 min 05 s"), (3599, "59 min 59 s"),
                                            (18563.9, "5 h 09 min"), (-1, "?"), ("12", "?"),
                                            (float("nan"), "?"), (float("inf"), "?"), (True, "?")])
def test_durations(seconds, words):
    assert texts.duration(seconds) == words


@pytest.mark.parametrize("data, n, words", [
    ("image folder ../shared/data/cifar10-jpeg/test", 10000, "the JPEG test set (10,000 images)"),
    ("image folder x/cifar10-clean-check", 2000,
     "the clean-pixel check (2,000 lossless held-back CIFAR-10 training images)"),
    ("CIFAR-10 test", 10000, "the 10,000 test images"),
    ("CIFAR-10 test (subset 500)", 500, "a 500-image sample of the test set"),
    ("bundled sample (test part)", 100, "the 100 held-out images of the bundled sample"),
    ("bundled sample (500 CIFAR-10 test images)", 500, "500 images of the bundled sample"),
    ("my *own* set", 7, r"7 images (my \*own\* set)"),
    (None, None, "? images"),
])
def test_data_words(data, n, words):
    assert texts.data_words(data, n) == words


def test_card_accuracy_lines_name_the_images_and_the_tta():
    acc = SHIPPED_CARD["accuracy"]
    assert texts.card_accuracy("test", acc["test"]) == (
        "test accuracy 90.32% (90.37% with flip test-time augmentation) on the JPEG test set (10,000 images)")
    assert texts.card_accuracy("clean_check", acc["clean_check"]) == (
        "accuracy 91.00% (91.35% with flip test-time augmentation) on the clean-pixel check "
        "(2,000 lossless held-back CIFAR-10 training images)")
    assert texts.card_accuracy("test", {"plain": "0.9"}) is None


def test_the_banner_says_on_which_images():
    card = {"accuracy": {"test": {"data": "CIFAR-10 test (subset 500)", "n": 500, "plain": 0.219}}}
    assert texts.banner("run-1", card, None, False) == (
        "Active model: **your model (this browser session only)** `run-1`: test accuracy 21.90% "
        "on a 500-image sample of the test set (its model card).")
    assert texts.banner("default.safetensors", card, None, True, measured=(0.9032, 10000, True)) == (
        "Active model: **shipped model** `default.safetensors`: 90.32% on the 10,000 test images.")
    assert texts.banner("x", {}, None, True, measured=(0.2224, 500, False)).endswith(
        ": 22.24% on a 500-image sample of the test set.")
    assert texts.banner("x", {}, None, True) == "Active model: **shipped model** `x`."


def test_the_mistakes_note_says_on_which_images_and_for_which_model():
    note = texts.mistakes_note("Full test set.", 0.9032, 10000, 968, 968, 60, full=True, model="default.safetensors")
    assert note == ("Full test set.\n\n**Accuracy 90.32%** on the 10,000 test images (`default.safetensors`) "
                    "(968 mistakes in all). 968 mistakes; showing 60.")
    assert "on a 500-image sample of the test set" in texts.mistakes_note("", 0.2, 500, 400, 400, 60, full=False)


def test_the_model_card_in_words():
    md = report.card_markdown(SHIPPED_CARD, "default.safetensors", measured="90.32% on the 10,000 test images")
    assert "**Accuracy in this app:** 90.32% on the 10,000 test images (the Mistakes tab's evaluation)" in md
    assert ("**Recorded when it was trained:** test accuracy 90.32% (90.37% with flip test-time augmentation) "
            "on the JPEG test set (10,000 images); accuracy 91.00% (91.35% with flip test-time "
            "augmentation) on the clean-pixel check") in md
    assert "| training time | 5 h 09 min |" in md and "| receptive field | 81 pixels |" in md
    assert "| training data | 46,000 images: offline JPEG copy" in md
    assert "<summary>training settings</summary>" in md and "<summary>augmentation settings</summary>" in md
    for raw in ("18563.9", "clean_check", "image folder", "tta", "train_config", "aug_config"):
        assert raw not in md, raw


def test_a_hostile_card_is_shown_literally():
    md = report.card_markdown({"preset": "<img src=x onerror=alert(1)>", "epochs": "**9**",
                               "train_config": {"x": "```\n<script>"}}, "w")
    assert r"\<img" in md and " <img" not in md and r"\*\*9\*\*" in md and md.count("```") == 2


def test_training_lines_state_the_images_used():
    assert texts.training_note(46000, 2000, 2000, 1000, 10000, False) == (
        "Training on 2,000 of the 46,000 CIFAR-10 training images (a random subset). "
        "Test accuracy after each epoch: on 1,000 of the 10,000 test images.")
    assert texts.training_note(46000, 46000, None, 10000, 10000, False) == (
        "Training on all 46,000 CIFAR-10 training images. Test accuracy after each epoch: on all "
        "10,000 test images.")
    assert texts.training_note(400, 400, 2000, 100, 100, True) == (
        "CIFAR-10 is not available on this server: this run trains on 400 images of the bundled sample "
        "and scores on 100 others. You asked for 2,000; only 400 are on this server. It only "
        "demonstrates the training loop; its accuracy means little.")
