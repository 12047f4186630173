import threading

import numpy as np
import pytest

from cifar_s9.augment import AugmentConfig
from cifar_s9.checkpoint import load_weights
from cifar_s9.data import Split
from cifar_s9.jobs import DONE, FAILED, STOPPED, Busy, TrainingJobs, TrainRequest
from cifar_s9.app_data import TrainingData
from cifar_s9.train import TrainConfig


def tiny_data() -> TrainingData:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (80, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 80).astype(np.int64)
    return TrainingData(Split(imgs[:64], labels[:64], "random train"),
                        Split(imgs[64:], labels[64:], "random test"), "random pixels", True)


REQUEST = TrainRequest("default", TrainConfig(epochs=1, batch_size=32, lr=0.05, log_every=1,
                                              device="cpu", threads=1), AugmentConfig())


def finish(job):
    job.thread.join(timeout=120)
    assert not job.thread.is_alive()
    return job.snapshot()


def test_a_run_trains_saves_and_releases_the_slot(tmp_path):
    jobs = TrainingJobs(tmp_path, tiny_data)
    job = jobs.start(REQUEST)
    snap = finish(job)
    assert snap.state == DONE, snap.error
    assert len(snap.epochs) == 1 and len(snap.steps) == 2 and snap.fraction == 1.0
    assert snap.device.startswith("CPU") and snap.data_note == "random pixels"
    assert snap.weights.startswith(str(tmp_path))
    model, card = load_weights(snap.weights)
    assert card["epochs"] == 1 and card["history"] and card["train_data"]["demo_only"]
    assert card["accuracy"]["test"]["n"] == 16
    assert not jobs.busy


def test_second_start_is_busy_then_allowed(tmp_path):
    gate = threading.Event()
    jobs = TrainingJobs(tmp_path, lambda: (gate.wait(30), tiny_data())[1])
    job = jobs.start(REQUEST)
    with pytest.raises(Busy, match="already in progress"):
        jobs.start(REQUEST)
    gate.set()
    assert finish(job).state == DONE
    finish(jobs.start(REQUEST))


def test_a_crash_releases_the_slot(tmp_path):
    def broken():
        raise RuntimeError("disk on fire")

    jobs = TrainingJobs(tmp_path, broken)
    snap = finish(jobs.start(REQUEST))
    assert snap.state == FAILED and "disk on fire" in snap.error
    assert not jobs.busy
    jobs.load_data = tiny_data
    too_big = TrainRequest("default", TrainConfig(epochs=1, batch_size=128, device="cpu"))
    snap = finish(jobs.start(too_big))  # fails inside the trainer: batch larger than the data
    assert snap.state == FAILED and "batch size" in snap.error and not jobs.busy


def test_stop_ends_the_run_and_still_saves(tmp_path):
    gate = threading.Event()
    jobs = TrainingJobs(tmp_path, lambda: (gate.wait(30), tiny_data())[1])
    job = jobs.start(REQUEST)
    assert jobs.stop()
    gate.set()
    snap = finish(job)
    assert snap.state == STOPPED and snap.weights and "stopped after 0 of 1" in snap.message
    assert not jobs.stop()


def test_invalid_settings_are_refused_before_starting(tmp_path):
    jobs = TrainingJobs(tmp_path, tiny_data)
    with pytest.raises(ValueError, match="epochs"):
        jobs.start(TrainRequest("default", TrainConfig(epochs=0)))
    with pytest.raises(ValueError, match="unknown preset"):
        jobs.start(TrainRequest("huge"))
    with pytest.raises(ValueError, match="holes_min"):
        jobs.start(TrainRequest(aug=AugmentConfig(holes_min=3, holes_max=1)))
    assert not jobs.busy and jobs.current is None


def test_wait_wakes_on_updates(tmp_path):
    jobs = TrainingJobs(tmp_path, tiny_data)
    job = jobs.start(REQUEST)
    seen, states = -1, []
    while True:
        seen = job.wait(seen, timeout=5)
        snap = job.snapshot()
        states.append(snap.message)
        if snap.finished:
            break
    assert len(states) >= 2 and states[-1].startswith("finished 1 epochs")
