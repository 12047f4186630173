import threading
from pathlib import Path

import numpy as np
import pytest

from cifar_s9.data.augment import AugmentConfig
from cifar_s9.records.checkpoint import load_weights
from cifar_s9.data.cifar import Split
from cifar_s9.data.app_data import TrainingData
from cifar_s9.app.jobs import DONE, FAILED, STOPPED, Busy, NotOwner, TrainingJobs, TrainRequest
from cifar_s9.train.trainer import TrainConfig
from waiting import HANG_S, SLOW_TEST_S

# runs train for real: on a busy machine they take longer, so waits are for the thread itself
pytestmark = pytest.mark.timeout(SLOW_TEST_S)


def tiny_data() -> TrainingData:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (80, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 80).astype(np.int64)
    return TrainingData(Split(imgs[:64], labels[:64], "random train"),
                        Split(imgs[64:], labels[64:], "random test"), "random pixels", True)


REQUEST = TrainRequest("default", TrainConfig(epochs=1, batch_size=32, lr=0.05, log_every=1,
                                              device="cpu", threads=1), AugmentConfig())


OWNER, STRANGER = "session-a", "session-b"


def finish(job):
    job.thread.join(timeout=HANG_S)
    assert not job.thread.is_alive(), f"the run did not end in {HANG_S:.0f} s"
    return job.snapshot()


@pytest.fixture
def gate():
    """Holds a run in its data loading until the test opens it (a signal, not a time): opened at
    teardown too, so a failed test never leaves a run waiting."""
    event = threading.Event()
    yield event
    event.set()


def gated(gate):
    return lambda: (gate.wait(HANG_S), tiny_data())[1]


def test_a_run_trains_saves_and_releases_the_slot(tmp_path):
    jobs = TrainingJobs(tmp_path, tiny_data)
    job = jobs.start(REQUEST, OWNER)
    snap = finish(job)
    assert snap.state == DONE, snap.error
    assert len(snap.epochs) == 1 and len(snap.steps) == 2 and snap.fraction == 1.0
    assert snap.device.startswith("CPU")
    assert "trains on 64 images of the bundled sample and scores on 16 others" in snap.data_note  # counted
    assert snap.weights.startswith(str(tmp_path))
    model, card = load_weights(snap.weights)
    assert card["epochs"] == 1 and card["history"] and card["train_data"]["demo_only"]
    assert card["accuracy"]["test"]["n"] == 16
    assert not jobs.busy


def test_second_start_is_busy_then_allowed(tmp_path, gate):
    jobs = TrainingJobs(tmp_path, gated(gate))
    job = jobs.start(REQUEST, OWNER)
    with pytest.raises(Busy, match="already in progress"):
        jobs.start(REQUEST, OWNER)
    gate.set()
    assert finish(job).state == DONE
    finish(jobs.start(REQUEST, OWNER))


def test_a_crash_releases_the_slot(tmp_path):
    def broken():
        raise RuntimeError("disk on fire")

    jobs = TrainingJobs(tmp_path, broken)
    snap = finish(jobs.start(REQUEST, OWNER))
    assert snap.state == FAILED and "disk on fire" in snap.error
    assert not jobs.busy
    jobs.load_data = tiny_data
    too_big = TrainRequest("default", TrainConfig(epochs=1, batch_size=128, device="cpu"))
    snap = finish(jobs.start(too_big, OWNER))  # fails inside the trainer: batch larger than the data
    assert snap.state == FAILED and "batch size" in snap.error and not jobs.busy


def test_a_run_stopped_before_its_first_epoch_saves_nothing(tmp_path, gate):
    jobs = TrainingJobs(tmp_path, gated(gate))
    job = jobs.start(REQUEST, OWNER)
    assert jobs.stop(OWNER)
    gate.set()
    snap = finish(job)
    assert snap.state == STOPPED and snap.weights is None and "nothing was saved" in snap.message
    assert not job.out_dir.exists()
    assert not jobs.stop(OWNER)
    with pytest.raises(ValueError, match="saved no trained weights"):  # nothing to activate
        jobs.trained_weights(job.run_id, OWNER)


def test_invalid_settings_are_refused_before_starting(tmp_path):
    jobs = TrainingJobs(tmp_path, tiny_data)
    with pytest.raises(ValueError, match="epochs"):
        jobs.start(TrainRequest("default", TrainConfig(epochs=0)), OWNER)
    with pytest.raises(ValueError, match="unknown preset"):
        jobs.start(TrainRequest("huge"), OWNER)
    with pytest.raises(ValueError, match="holes_min"):
        jobs.start(TrainRequest(aug=AugmentConfig(holes_min=3, holes_max=1)), OWNER)
    assert not jobs.busy and jobs.current is None


def test_wait_wakes_on_updates(tmp_path):
    jobs = TrainingJobs(tmp_path, tiny_data)
    job = jobs.start(REQUEST, OWNER)
    seen, states = -1, []
    while True:
        seen = job.wait(seen, timeout=5)
        snap = job.snapshot()
        states.append(snap.message)
        if snap.finished:
            break
    assert len(states) >= 2 and states[-1].startswith("finished 1 epochs")


# ---------------------------------------------------------------- owners (issue 13)

def test_only_the_session_that_started_a_run_can_stop_it(tmp_path, gate):
    jobs = TrainingJobs(tmp_path, gated(gate))
    job = jobs.start(REQUEST, OWNER)
    with pytest.raises(NotOwner, match="another visitor"):
        jobs.stop(STRANGER)
    assert not job.stop_event.is_set()
    for anonymous in ("", None):
        with pytest.raises(NotOwner):
            jobs.stop(anonymous)
    gate.set()
    assert finish(job).state == DONE  # the stranger's stop changed nothing


def test_a_run_needs_an_owner(tmp_path):
    jobs = TrainingJobs(tmp_path, tiny_data)
    for owner in ("", None, 7):
        with pytest.raises(ValueError, match="owner"):
            jobs.start(REQUEST, owner)
    assert not jobs.busy


def test_trained_weights_only_for_the_owner_of_a_finished_trained_run(tmp_path):
    jobs = TrainingJobs(tmp_path, tiny_data)
    job = jobs.start(REQUEST, OWNER)
    snap = finish(job)
    assert jobs.trained_weights(job.run_id, OWNER) == Path(snap.weights)
    assert job.run_id in snap.message and str(tmp_path) not in snap.message
    with pytest.raises(NotOwner):
        jobs.trained_weights(job.run_id, STRANGER)
    for bad in ("nope", "../weights", None, 3):
        with pytest.raises(ValueError, match="no such training run"):
            jobs.trained_weights(bad, OWNER)


def test_a_0_epoch_checkpoint_is_never_handed_out(tmp_path):
    import json
    jobs = TrainingJobs(tmp_path, tiny_data)
    job = jobs.start(REQUEST, OWNER)
    snap = finish(job)
    card_file = Path(snap.weights).with_suffix(".json")
    card = json.loads(card_file.read_text())
    card_file.write_text(json.dumps({**card, "epochs": 0}))
    with pytest.raises(ValueError, match="0 epochs"):
        jobs.trained_weights(job.run_id, OWNER)


def test_old_run_folders_are_pruned_when_a_run_starts(tmp_path):
    import os
    runs = tmp_path / "runs"
    old = runs / "20200101-000000-000000-default"
    old.mkdir(parents=True)
    (old / "model.safetensors").write_bytes(b"x" * 1000)
    os.utime(old, (0, 0))
    os.utime(old / "model.safetensors", (0, 0))
    notes = runs / "notes.txt"
    notes.write_text("not a run: never touched")
    os.utime(notes, (0, 0))
    jobs = TrainingJobs(runs, tiny_data, caps={"max_age_s": 3600, "max_total_bytes": 10**9})
    snap = finish(jobs.start(REQUEST, OWNER))
    assert not old.exists() and notes.exists() and Path(snap.weights).is_file()
    jobs.caps = {"max_age_s": 3600, "max_total_bytes": 0}  # size cap: the finished run goes too
    assert jobs.prune() == [Path(snap.weights).parent] and notes.exists()


def test_every_app_preset_names_a_run_folder_the_app_can_find_again():
    """A run's folder is <stamp>-<preset>; the app downloads and prunes only folders that match
    RUN_NAME, so a preset named "high-res" would train and then be lost to both."""
    import datetime as dt

    from cifar_s9.app.jobs import RUN_NAME
    from cifar_s9.model.net import PRESETS

    stamp = dt.datetime(2026, 12, 2, 15, 4, 5, 67).strftime("%Y%m%d-%H%M%S-%f")
    assert [p for p in PRESETS if not RUN_NAME.fullmatch(f"{stamp}-{p}")] == []
    assert not RUN_NAME.fullmatch(f"{stamp}-high-res")  # the check can fail
