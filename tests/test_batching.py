"""Concurrent classify and Grad-CAM requests share one pass (issue 25): `app.batching.Coalescer`,
`gradcam.explain_many` and serving's batched `probabilities` / `heatmap`."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from cifar_s9.analysis import gradcam
from cifar_s9.app import serving
from cifar_s9.app.batching import Coalescer
from inside_fixtures import net  # noqa: F401  (shared fixture)
from waiting import HANG_S, wait_until


class HeldFirstPass:
    """run_batch that records each pass's items and holds the first pass until released."""

    def __init__(self):
        self.passes: list[list] = []
        self.first_running = threading.Event()
        self.release = threading.Event()

    def __call__(self, key, items):
        self.passes.append(list(items))
        if len(self.passes) == 1:
            self.first_running.set()
            assert self.release.wait(HANG_S)
        if any(item == "bad" for item in items):
            raise ValueError("bad item")
        return [f"{key}:{item}" for item in items]


def call_in_thread(coalescer, key, item, answers: dict) -> threading.Thread:
    def run():
        try:
            answers[item] = coalescer(key, item)
        except Exception as error:  # noqa: BLE001 (the test reads it)
            answers[item] = error
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def release_and_join(run: HeldFirstPass, threads: list[threading.Thread]) -> None:
    run.release.set()
    for t in threads:
        t.join(HANG_S)


def queue_behind_a_held_pass(run, coalescer, key, items: list) -> tuple[dict, list[threading.Thread]]:
    """One call of `key` running (held), then `items` queued behind it; returns once all queue."""
    answers: dict = {}
    threads = [call_in_thread(coalescer, key, "first", answers)]
    assert run.first_running.wait(HANG_S)
    threads += [call_in_thread(coalescer, key, item, answers) for item in items]
    wait_until(lambda: coalescer.waiting(key) == len(items), "every call queued")
    return answers, threads


def test_a_lone_call_runs_at_once_and_alone():
    seen = []
    coalescer = Coalescer(lambda key, items: seen.append(list(items)) or [i * 2 for i in items])
    assert coalescer("k", 21) == 42
    assert seen == [[21]] and coalescer.batches == 1 and coalescer.waiting("k") == 0


def test_calls_queued_behind_a_pass_run_together_in_the_next():
    run = HeldFirstPass()
    coalescer = Coalescer(run)
    answers, threads = queue_behind_a_held_pass(run, coalescer, "k", ["a", "b", "c"])
    release_and_join(run, threads)
    assert run.passes == [["first"], ["a", "b", "c"]]  # oldest first
    assert answers == {"first": "k:first", "a": "k:a", "b": "k:b", "c": "k:c"}
    assert (coalescer.batches, coalescer.items) == (2, 4)


def test_other_keys_do_not_wait_for_a_running_pass():
    run = HeldFirstPass()
    coalescer = Coalescer(run)
    answers: dict = {}
    held = call_in_thread(coalescer, "slow", "first", answers)
    assert run.first_running.wait(HANG_S)
    assert coalescer("other", "x") == "other:x"  # answered while "slow" is still held
    run.release.set()
    held.join(HANG_S)
    assert answers == {"first": "slow:first"}


def test_a_pass_holds_at_most_max_batch_items():
    run = HeldFirstPass()
    coalescer = Coalescer(run, max_batch=2)
    answers, threads = queue_behind_a_held_pass(run, coalescer, "k", list("abcde"))
    release_and_join(run, threads)
    assert [len(p) for p in run.passes] == [1, 2, 2, 1]
    assert sorted(sum(run.passes, [])) == sorted(["first", *"abcde"])
    assert all(answers[i] == f"k:{i}" for i in "abcde")


def test_one_bad_item_fails_only_its_own_call():
    run = HeldFirstPass()
    coalescer = Coalescer(run)
    answers, threads = queue_behind_a_held_pass(run, coalescer, "k", ["a", "bad", "c"])
    release_and_join(run, threads)
    assert answers["a"] == "k:a" and answers["c"] == "k:c"
    assert isinstance(answers["bad"], ValueError)
    # the failed pass, then each of its items alone
    assert run.passes[1:] == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]


def test_a_lone_failure_is_raised_once_and_the_key_is_free_again():
    calls = []

    def run(key, items):
        calls.append(list(items))
        raise RuntimeError("broken")

    coalescer = Coalescer(run)
    with pytest.raises(RuntimeError, match="broken"):
        coalescer("k", 1)
    assert calls == [[1]]
    with pytest.raises(RuntimeError):  # not stuck "running" after a failure
        coalescer("k", 2)


def test_a_wrong_number_of_results_is_an_error_not_a_mix_up():
    coalescer = Coalescer(lambda key, items: ["only one"])
    assert coalescer("k", 1) == "only one"
    run = HeldFirstPass()
    short = Coalescer(lambda key, items: run(key, items)[:1])
    answers, threads = queue_behind_a_held_pass(run, short, "k", ["a", "b"])
    release_and_join(run, threads)
    assert answers["a"] == "k:a" and answers["b"] == "k:b"  # retried one by one


# ---------------------------------------------------------------- the network

IMAGES = np.random.default_rng(3).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
TARGETS = [None, 3, 7]


@pytest.mark.parametrize("method", list(gradcam.METHODS))
def test_a_batch_of_heatmaps_is_each_image_explained_alone(net, method):
    together = gradcam.explain_many(net, IMAGES, method, "C3", TARGETS)
    alone = [gradcam.explain(net, image, method, "C3", target) for image, target in zip(IMAGES, TARGETS)]
    assert together.shape == (3, 32, 32) and together.dtype == np.float32
    np.testing.assert_allclose(together, np.stack(alone), atol=1e-4)
    assert gradcam.hooks_left(net) == 0


def test_an_unset_target_in_a_batch_explains_that_images_prediction(net):
    predicted = [int(np.argmax(serving.probabilities(net, image))) for image in IMAGES]
    mixed = gradcam.explain_many(net, IMAGES, "GradCAM", "C4", [None, 3, None])
    explicit = gradcam.explain_many(net, IMAGES, "GradCAM", "C4", [predicted[0], 3, predicted[2]])
    np.testing.assert_allclose(mixed, explicit, atol=1e-5)


@pytest.mark.parametrize("bad", [np.zeros((0, 32, 32, 3), np.uint8), np.zeros((2, 32, 32), np.uint8),
                                 np.zeros((2, 32, 32, 3), np.float32)])
def test_explain_many_refuses_what_is_not_a_batch_of_pictures(net, bad):
    with pytest.raises(gradcam.ExplainError, match="expected"):
        gradcam.explain_many(net, bad)


def test_explain_many_refuses_targets_that_do_not_fit(net):
    with pytest.raises(gradcam.ExplainError, match="2 targets for 3 images"):
        gradcam.explain_many(net, IMAGES, targets=[1, 2])
    with pytest.raises(gradcam.ExplainError, match="target class"):
        gradcam.explain_many(net, IMAGES, targets=[1, 2, 10])


def test_concurrent_requests_each_get_their_own_answer(net):
    """Threads asking at once (batched or not) get exactly what each asks for alone."""
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    targets = [None, 1, 2, None, 4, 5, None, 9]
    probs_alone = [serving.predict_logits(net, im[None]).softmax(1)[0].numpy() for im in images]
    maps_alone = [gradcam.explain(net, im, "GradCAM", "C4", t) for im, t in zip(images, targets)]
    got: dict = {}
    start = threading.Barrier(8)

    def ask(i):
        start.wait()
        got[i] = serving.probabilities(net, images[i]), serving.heatmap(net, images[i], "GradCAM", "C4", targets[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG_S)
    for i in range(8):
        np.testing.assert_allclose(got[i][0], probs_alone[i], atol=1e-5)
        np.testing.assert_allclose(got[i][1], maps_alone[i], atol=1e-4)


def test_serving_refuses_a_picture_of_the_wrong_shape_before_queueing(net):
    with pytest.raises(gradcam.ExplainError, match="expected an"):
        serving.heatmap(net, np.zeros((32, 32), np.uint8))

