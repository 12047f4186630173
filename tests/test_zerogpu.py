"""Training on ZeroGPU, with a fake that forks like ZeroGPU: every `spaces.GPU` call runs in a
forked daemon process, its arguments and result pickled across (a lock, an event or a callback
fails at once), its requested duration recorded. Through it a Train-tab run and an experiment
train in GPU calls of one epoch each, from the app's own `TrainingJobs` and `Experiments`:
progress between calls, Stop and the slot's hold limit between calls, every request <= 300 s.
"""
from __future__ import annotations

import ast
import inspect
import multiprocessing
import os
import pickle
import threading
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import spaces.config
import torch
from synthetic import make_split, tiny_config
from waiting import HANG_S, SLOW_TEST_S, wait_until

from cifar_s9.app.experiment_jobs import Experiments
from cifar_s9.app.jobs import DONE, STOPPED, TrainingJobs, TrainRequest
from cifar_s9.app.slot import LOCAL_SLOT, SlotPolicy
from cifar_s9.data.app_data import TrainingData
from cifar_s9.data.augment import AugmentConfig
from cifar_s9.errors import UserError
from cifar_s9.experiments import zerogpu
from cifar_s9.experiments.runner import ExperimentData, no_dropout_question
from cifar_s9.experiments.zerogpu import MAX_CALL_S, GpuEstimate, SlotTraining, plan_call
from cifar_s9.records.checkpoint import load_weights
from cifar_s9.train.chunks import TrainSpec, correctness
from cifar_s9.train.config import TrainConfig
from cifar_s9.train.recipes import LAB_TRAIN

pytestmark = pytest.mark.timeout(SLOW_TEST_S)  # real (tiny) training in forked processes

ROOT = Path(__file__).resolve().parent.parent
OWNER = "session-a"


# ---------------------------------------------------------------- the fake

class ForkingZeroGPU:
    """`spaces.GPU` as ZeroGPU runs a call: in a forked daemon process (ZeroGPU's worker is one,
    so it may not start DataLoader processes either), arguments and result pickled. `asked`: the
    duration each call requested; `before_call(n)` runs in the app's process as call n (1-based)
    starts, where a test may hold it."""

    def __init__(self):
        self.asked: list[int] = []
        self.before_call = lambda n: None

    def GPU(self, duration):  # noqa: N802 (spaces' name)
        def decorate(task):
            def on_gpu(*args, **kwargs):
                self.asked.append(duration(*args, **kwargs))
                self.before_call(len(self.asked))
                payload = pickle.dumps((args, kwargs))  # a lock, an event, a callback: fails here
                return run_forked(task, payload)
            return on_gpu
        return decorate


def run_forked(task, payload: bytes):
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_worker, args=(task, payload, send), daemon=True)
    worker.start()
    send.close()
    try:
        if not receive.poll(HANG_S):
            raise AssertionError(f"the GPU worker sent nothing in {HANG_S:.0f} s")
        ok, value = pickle.loads(receive.recv_bytes())
    finally:
        worker.join(HANG_S)
        if worker.is_alive():
            worker.kill()
    if not ok:
        raise RuntimeError(f"the GPU task failed in its worker:\n{value}")
    return value


def _worker(task, payload: bytes, send) -> None:
    torch.set_num_threads(1)  # fork + OpenMP: one thread in the child
    try:
        args, kwargs = pickle.loads(payload)
        out = pickle.dumps((True, task(*args, **kwargs)))  # the result must cross back too
    except BaseException:
        out = pickle.dumps((False, traceback.format_exc()))
    send.send_bytes(out)


@pytest.fixture
def fake_zerogpu(monkeypatch):
    """The app on ZeroGPU (spaces' own switch, `Config.zero_gpu`), its GPU tasks on the fake."""
    fake = ForkingZeroGPU()
    monkeypatch.setattr(spaces.config.Config, "zero_gpu", True)
    monkeypatch.setattr(zerogpu, "ON_GPU", zerogpu.GpuTasks(fake.GPU))
    return fake


@dataclass(frozen=True)
class OneEpochPerCall(GpuEstimate):
    """A GPU so slow by the estimate that each call has room for one epoch only."""

    def epoch_s(self, images: int, batch_size: int, evaluated: int) -> float:
        return 200.0


@pytest.fixture
def one_epoch_per_call(monkeypatch):
    monkeypatch.setattr(zerogpu, "ESTIMATE", OneEpochPerCall())


@pytest.fixture
def gate():
    """Holds GPU call 2 in the app's process until the test opens it; opened at teardown too."""
    event = threading.Event()
    yield event
    event.set()


def hold_call_2(fake: ForkingZeroGPU, gate: threading.Event) -> None:
    fake.before_call = lambda n: n == 2 and gate.wait(HANG_S)


def all_within_max(asked: list[int]) -> bool:
    return bool(asked) and all(0 < s <= MAX_CALL_S for s in asked)


# ---------------------------------------------------------------- the fake itself

def test_the_fake_runs_elsewhere_and_refuses_what_cannot_cross(fake_zerogpu):
    pid = fake_zerogpu.GPU(duration=lambda *a, **k: 10)(os.getpid)
    assert pid() != os.getpid() and fake_zerogpu.asked == [10]
    echo = fake_zerogpu.GPU(duration=lambda *a, **k: 10)(lambda x: x)
    for unpicklable in (threading.Event(), threading.Lock(), lambda event: None):
        with pytest.raises((TypeError, pickle.PicklingError, AttributeError)):
            echo(unpicklable)


# ---------------------------------------------------------------- the chunks

def spec(**train) -> TrainSpec:
    cfg = TrainConfig(**{"epochs": 3, "batch_size": 16, "lr": 0.05, "subset": 48, "device": "cpu",
                         "ema_decay": 0.9, "mixup_alpha": 0.2, "log_every": 1, "threads": 1, **train})
    return TrainSpec(tiny_config(dropout=0.1), cfg, AugmentConfig(), make_split(64), make_split(20, seed=1),
                     score=make_split(30, seed=2))


def test_a_run_in_one_epoch_calls_is_the_run_trained_in_one_go(fake_zerogpu, one_epoch_per_call):
    # DataLoader processes asked for: the worker (a daemon, like ZeroGPU's) trains without them
    training = SlotTraining(spec(workers=2))
    fitted = training.fit(threading.Event())
    assert len(fitted.calls) == 3 and fitted.calls == tuple(fake_zerogpu.asked)
    assert all_within_max(fake_zerogpu.asked)
    assert training.trainer.epoch == 3 and [h["epoch"] for h in training.trainer.history] == [1, 2, 3]
    one_go = spec().build()
    one_go.fit()
    for name, value in one_go.eval_model.state_dict().items():
        assert torch.equal(value, training.trainer.eval_model.state_dict()[name]), name
    assert (fitted.correct == correctness(one_go.eval_model, spec().score, one_go.device)).all()
    assert fitted.device.startswith("CPU")


def test_calls_fit_in_the_maximum_and_in_what_the_slot_has_left():
    s = replace(spec(), score=None).for_worker()
    assert len(s.train_split) == 48 and s.train_config.subset is None and s.train_config.workers == 0
    assert plan_call(s, 10, estimate=OneEpochPerCall()) == (1, 260)
    fast = GpuEstimate(overhead_s=60, train_images_per_s=4, eval_images_per_s=float("inf"), step_s=0)
    assert plan_call(s, 100, estimate=fast) == (20, 300)                # 12 s an epoch, 60 s to start
    assert plan_call(s, 5, estimate=fast) == (5, 120)                   # what is left of the run
    assert plan_call(s, 100, time_left_s=100, estimate=fast)[0] == 3    # what is left of the slot
    assert plan_call(s, 100, time_left_s=0, estimate=fast)[0] == 1      # one at least: the slot stops it
    assert plan_call(s, 100, slowest_epoch_s=20, estimate=fast)[0] == 8  # measured slower: 30 s each
    with pytest.raises(UserError, match="300 s ZeroGPU lends at once"):
        zerogpu.check_fits(50_000, 1, 1000)  # a batch of one on all of CIFAR-10
    zerogpu.check_fits(50_000, 32, 10_000)  # the app's slowest run from the UI fits


def test_a_minutes_budget_is_timed_in_one_short_call(fake_zerogpu):
    budgeted = spec(time_budget_s=3.0)
    assert zerogpu.planned_epochs(budgeted) >= 1
    assert fake_zerogpu.asked == [zerogpu.PLAN_CALL_S] and zerogpu.PLAN_CALL_S <= MAX_CALL_S
    with pytest.raises(ValueError, match="time budget"):
        SlotTraining(budgeted)


# ---------------------------------------------------------------- a Train-tab run

def tiny_data() -> TrainingData:
    return TrainingData(make_split(64), make_split(20, seed=1), "synthetic", True)


def request(epochs: int) -> TrainRequest:
    return TrainRequest("default", TrainConfig(epochs=epochs, batch_size=32, lr=0.05, log_every=1,
                                               device="cpu", threads=1), AugmentConfig(), eval_images=16)


def finish(job):
    job.thread.join(timeout=HANG_S)
    assert not job.thread.is_alive(), f"the run did not end in {HANG_S:.0f} s"
    return job.snapshot()


def between_calls(job, epochs: int, call: int) -> bool:
    snap = job.snapshot()
    return len(snap.epochs) == epochs and f"(call {call}," in snap.message


def test_a_train_tab_run_trains_in_calls_to_done(tmp_path, fake_zerogpu, one_epoch_per_call, gate):
    hold_call_2(fake_zerogpu, gate)
    jobs = TrainingJobs(tmp_path, tiny_data, policy=LOCAL_SLOT)  # the hold limit: the last test
    job = jobs.start(request(epochs=3), OWNER)
    wait_until(lambda: between_calls(job, 1, 2), "epoch 1 shown while call 2 waits")
    snap = job.snapshot()
    assert not snap.finished and snap.epochs[0]["epoch"] == 1 and snap.step == 2 and snap.total_steps == 6
    assert snap.device.startswith("CPU")  # what the first call trained on
    gate.set()
    snap = finish(job)
    assert snap.state == DONE, snap.error
    assert [e["epoch"] for e in snap.epochs] == [1, 2, 3] and snap.fraction == 1.0
    assert len(fake_zerogpu.asked) == 3 and all_within_max(fake_zerogpu.asked)
    _, card = load_weights(snap.weights)
    assert card["epochs"] == 3 and card["device"].startswith("CPU") and len(card["history"]) == 3
    assert jobs.trained_weights(job.run_id, OWNER) == Path(snap.weights)
    assert not jobs.busy


def test_stop_ends_a_train_tab_run_between_calls(tmp_path, fake_zerogpu, one_epoch_per_call, gate):
    hold_call_2(fake_zerogpu, gate)
    jobs = TrainingJobs(tmp_path, tiny_data, policy=LOCAL_SLOT)  # the hold limit: the last test
    job = jobs.start(request(epochs=4), OWNER)
    wait_until(lambda: between_calls(job, 1, 2), "epoch 1 shown while call 2 waits")
    assert jobs.stop(OWNER)
    gate.set()  # a call in progress is not interrupted (ZeroGPU cannot); no later one starts
    snap = finish(job)
    assert snap.state == STOPPED and "after 2 of 4 epochs" in snap.message
    assert len(fake_zerogpu.asked) == 2 and all_within_max(fake_zerogpu.asked)
    assert load_weights(snap.weights)[1]["epochs"] == 2


def test_a_run_that_cannot_fit_one_call_is_refused_before_it_starts(tmp_path, fake_zerogpu):
    jobs = TrainingJobs(tmp_path, tiny_data, policy=LOCAL_SLOT)  # the hold limit: the last test
    one_by_one = TrainRequest("default", TrainConfig(epochs=1, batch_size=1, subset=50_000))
    with pytest.raises(UserError, match="ZeroGPU lends at once"):
        jobs.start(one_by_one, OWNER)
    assert not jobs.busy and fake_zerogpu.asked == []


# ---------------------------------------------------------------- an experiment

TINY = dict(train=replace(LAB_TRAIN, batch_size=16, threads=1, device="cpu"), subset=32, epochs=2,
            minutes=None, curve_images=10)


def experiment_data() -> ExperimentData:
    return ExperimentData(make_split(96), make_split(20, seed=1), "synthetic", True)


def wait_done(job):
    wait_until(lambda: job.snapshot().finished, "the experiment to finish")
    return job.snapshot()


def test_an_experiment_longer_than_one_call_trains_every_arm_in_calls(tmp_path, fake_zerogpu,
                                                                      one_epoch_per_call):
    experiments = Experiments(TrainingJobs(tmp_path / "runs", tiny_data, policy=LOCAL_SLOT), experiment_data)
    job = experiments.start(no_dropout_question(AugmentConfig(), **TINY), "alice")
    snap = wait_done(job)
    assert snap.state == "done", snap.error
    assert [q["state"] for q in snap.queue] == ["done", "done"]
    assert [c["epoch"] for c in snap.curves.values()] == [[1, 2], [1, 2]]
    assert snap.result.complete and all(len(r.correct) == 20 and r.epochs == 2 for r in snap.result.runs)
    assert len(fake_zerogpu.asked) == 4 and all_within_max(fake_zerogpu.asked)


def test_the_slots_hold_limit_stops_an_experiment_between_calls(tmp_path, fake_zerogpu, one_epoch_per_call,
                                                                gate):
    now = [0.0]
    jobs = TrainingJobs(tmp_path / "runs", tiny_data, policy=SlotPolicy(max_hold_s=600.0, owner_grace_s=None),
                        clock=lambda: now[0])
    hold_call_2(fake_zerogpu, gate)
    job = Experiments(jobs, experiment_data).start(no_dropout_question(AugmentConfig(), **TINY), "alice")
    wait_until(lambda: len(next(iter(job.snapshot().curves.values()), {"epoch": []})["epoch"]) == 1
               and "(call 2," in job.snapshot().message, "arm 1's epoch 1 shown while call 2 waits")
    now[0] = 601.0  # past the slot's limit: its watchdog (or this check) stops the experiment
    jobs.check()
    assert job.stop_event.is_set() and "limit" in job.stop_reason
    gate.set()
    snap = wait_done(job)
    assert snap.state == "stopped" and [q["state"] for q in snap.queue] == ["done", "waiting"]
    assert len(snap.result.runs) == 1 and snap.result.runs[0].epochs == 2
    assert len(fake_zerogpu.asked) == 2 and all_within_max(fake_zerogpu.asked)


# ---------------------------------------------------------------- the regression that must not return

def spaces_importers() -> set[str]:
    found = set()
    for path in [*sorted((ROOT / "cifar_s9").rglob("*.py")), ROOT / "app.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            if any(name.split(".")[0] == "spaces" for name in names):
                found.add(path.relative_to(ROOT).as_posix())
    return found


def test_only_the_slot_runner_asks_zerogpu_for_a_gpu():
    """Once the whole Train-tab stream was decorated with `spaces.GPU`: on ZeroGPU that ran the
    slot's lock, its thread and the stream in the GPU worker, away from the heartbeat and Stop.
    The GPU tasks are the runner's, plain functions of picklable arguments; the UI's handlers
    are the UI's."""
    assert spaces_importers() == {"cifar_s9/experiments/zerogpu.py"}
    tree = ast.parse((ROOT / "cifar_s9/experiments/zerogpu.py").read_text())
    uses = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "GPU"
            and isinstance(node.value, ast.Name) and node.value.id == "spaces"]
    assert len(uses) == 1  # GpuTasks' default: the decorator of its two tasks
    for task in (zerogpu._train_chunk, zerogpu._planned_epochs):
        assert not inspect.isgeneratorfunction(task)
    handlers = next(node for node in ast.walk(ast.parse((ROOT / "cifar_s9/ui/train.py").read_text()))
                    if isinstance(node, ast.ClassDef) and node.name == "TrainHandlers")
    decorators = {ast.unparse(d) for f in handlers.body if isinstance(f, ast.FunctionDef) for d in f.decorator_list}
    assert decorators <= {"user_errors"}  # the stream, its heartbeat and Stop stay in the app's process
