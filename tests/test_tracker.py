"""The run tracker (trackio, local, offline): write, restart, read back; pruning; the CLI hook."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from waiting import HANG_S, SLOW_TEST_S

from cifar_s9 import cli
from cifar_s9.experiments import tracker
from cifar_s9.train.events import EpochEvent

ROOT = Path(__file__).resolve().parent.parent


def _event(epoch: int, loss: float, acc: float | None) -> EpochEvent:
    return EpochEvent(epoch, 3, loss, 0.5, 1.0, acc, 0.01, 100.0, 1.0, 0.0, "validation")


def _python(code: str, trackio_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRACKIO_DIR": str(trackio_dir), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=HANG_S)


@pytest.mark.timeout(SLOW_TEST_S)  # two fresh interpreters import torch: slow on a busy machine
def test_runs_and_checkpoints_survive_a_restart_and_no_network_is_touched(tmp_path):
    # process 1 writes a run and its checkpoint with every socket blocked and a Hugging Face
    # token and Space id in the environment: the tracker must stay local and never connect
    writer = _python("""
        import os, socket
        os.environ["HF_TOKEN"] = "hf_not_a_real_token"
        os.environ["TRACKIO_SPACE_ID"] = "someone/somewhere"
        attempts = []
        def refuse(*args, **kwargs):
            attempts.append(args)
            raise OSError("network disabled in this test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from cifar_s9.experiments import tracker
        from cifar_s9.train.events import EpochEvent, StepEvent
        ckpt = tracker.checkpoint_path("run-one")
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        ckpt.write_bytes(b"weights")
        log = tracker.RunLogger("run-one", {"arm": "dropout", "preset": "default"}, group="g", checkpoint=ckpt)
        log(StepEvent(1, 1, 6, 2.0, 0.1, 10.0, 5.0))           # steps are not kept
        for e, (loss, acc) in enumerate([(2.0, 0.3), (1.5, 0.45), (1.2, 0.5)], start=1):
            log(EpochEvent(e, 3, loss, 0.4, 1.0, acc, 0.01, 100.0, 1.0, 0.0, "validation"))
        log.finish({"accuracy": 0.5, "epochs": 3})
        print("ATTEMPTS", len(attempts))
    """, tmp_path)
    assert writer.returncode == 0, writer.stderr
    assert writer.stdout.strip().splitlines()[-1] == "ATTEMPTS 0"
    assert "someone/somewhere" not in writer.stdout + writer.stderr
    # process 2: a fresh interpreter (an app restart) reads the same folder
    reader = _python("""
        import json
        from cifar_s9.experiments import tracker
        runs = tracker.list_runs()
        r = runs[0]
        print(json.dumps({"names": [x.name for x in runs], "config": r.config, "final": r.final,
                          "group": r.group, "checkpoint": r.checkpoint, "exists": r.checkpoint_exists,
                          "curves": tracker.run_curves("run-one")}))
    """, tmp_path)
    assert reader.returncode == 0, reader.stderr
    got = json.loads(reader.stdout.strip().splitlines()[-1])
    assert got["names"] == ["run-one"]
    assert got["config"]["arm"] == "dropout" and got["group"] == "g"
    assert got["final"] == {"accuracy": 0.5, "epochs": 3.0, "completed": 1.0}
    assert got["exists"] and Path(got["checkpoint"]) == tmp_path / "checkpoints" / "run-one.safetensors"
    assert got["curves"]["epoch"] == [1, 2, 3]
    assert got["curves"]["train_loss"] == [2.0, 1.5, 1.2]
    assert got["curves"]["val_acc"] == [0.3, 0.45, 0.5]
    assert (tmp_path / "cifar_s9.db").is_file()  # trackio's own database: `trackio show` reads it


def test_in_process_round_trip_and_overlay():
    # conftest points TRACKIO_DIR at a throwaway folder for the whole session
    assert "cifar_s9-trackio-" in str(tracker.storage_dir())
    names = [tracker.run_name(f"overlay {i}") for i in range(2)]
    for i, name in enumerate(names):
        log = tracker.RunLogger(name, {"arm": f"arm {i}"})
        for e in (1, 2):
            log(_event(e, 2.0 - e * 0.1 - i, 0.2 * e + 0.1 * i))
        log.finish({"accuracy": 0.4 + 0.1 * i, "note": "text is ignored"}, state="done" if i else "stopped")
    both = tracker.overlay(*names)
    assert both[names[0]]["val_acc"] == pytest.approx([0.2, 0.4])
    assert both[names[1]]["train_loss"] == pytest.approx([0.9, 0.8])
    listed = {r.name: r for r in tracker.list_runs()}
    assert listed[names[0]].final == {"accuracy": 0.4, "completed": 0.0}
    assert "arm 1" in tracker.describe(listed[names[1]]) and "50.0%" in tracker.describe(listed[names[1]])
    with pytest.raises(KeyError):
        tracker.run_curves("no such run")


def test_each_score_is_logged_under_the_split_it_was_measured_on():
    # a test-set score logged as val/acc would read as a validation one (issue 24.4)
    name = tracker.run_name("splits")
    log = tracker.RunLogger(name, {"arm": "a"})
    log(EpochEvent(1, 2, 2.0, 0.5, 1.9, 0.3, 0.01, 100.0, 1.0, 0.0, "test"))
    log(EpochEvent(2, 2, 1.5, 0.6, 1.4, 0.4, 0.01, 100.0, 1.0, 0.0, "test"))
    log.finish()
    curves = tracker.run_curves(name)
    assert curves["test_acc"] == pytest.approx([0.3, 0.4]) and curves["val_acc"] == [None, None]
    assert curves["test_loss"] == pytest.approx([1.9, 1.4])


def test_run_names_are_unique_and_safe():
    a, b = tracker.run_name("../../etc passwd"), tracker.run_name("../../etc passwd")
    assert a != b and "/" not in a and " " not in a
    assert tracker.checkpoint_path("../x").parent == tracker.checkpoints_dir()


def test_prune_removes_oldest_checkpoints_first(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for i in range(4):
        w = folder / f"run{i}.safetensors"
        w.write_bytes(b"x" * 100)
        (folder / f"run{i}.json").write_text("{}")  # its card, 2 bytes
        os.utime(w, (1000 + i, 1000 + i))
    other = folder / "notes.txt"
    other.write_text("kept")
    removed = tracker.prune_checkpoints(max_bytes=210, folder=folder)
    assert [p.name for p in removed] == ["run0.safetensors", "run1.safetensors"]
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt", "run2.json", "run2.safetensors",
                                                        "run3.json", "run3.safetensors"]
    assert tracker.prune_checkpoints(max_bytes=10**9, folder=folder) == []


@pytest.mark.parametrize("protected", ["weights", "training", "training/distill", "."])
def test_prune_never_touches_shipped_weights_or_training(protected):
    before = sorted(p.name for p in (ROOT / "weights").iterdir())
    with pytest.raises(ValueError, match="protected"):
        tracker.prune_checkpoints(max_bytes=0, folder=ROOT / protected)
    assert sorted(p.name for p in (ROOT / "weights").iterdir()) == before


def test_cli_train_is_recorded_with_its_checkpoint(capsys, dataset_dir, tmp_path):
    out = tmp_path / "cli" / "model.safetensors"
    code = cli.main(["train", "--recipe", "quick", "--data-dir", str(dataset_dir), "--epochs", "2",
                     "--batch-size", "8", "--subset", "40", "--threads", "1", "--out", str(out)])
    assert code == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["weights"] == str(out)
    run = next(r for r in tracker.list_runs() if r.checkpoint == str(out.resolve()))
    assert run.config["source"] == "cli" and run.config["recipe"] == "quick"
    assert run.config["train"]["batch_size"] == 8 and run.config["aug"]["dropout_p"] == 0.5
    assert run.final["epochs"] == 2 and 0 <= run.final["accuracy"] <= 1 and run.checkpoint_exists
    assert tracker.run_curves(run.name)["epoch"] == [1, 2]


def test_cli_no_track_records_nothing(capsys, dataset_dir, tmp_path):
    before = len(tracker.list_runs())
    assert cli.main(["train", "--recipe", "quick", "--data-dir", str(dataset_dir), "--epochs", "1",
                     "--batch-size", "8", "--subset", "16", "--threads", "1", "--no-test", "--no-track",
                     "--out", str(tmp_path / "m.safetensors")]) == 0
    assert len(tracker.list_runs()) == before


def test_chain_calls_every_callback_in_order():
    seen = []
    tracker.chain(lambda e: seen.append(("a", e)), None, lambda e: seen.append(("b", e)))(1)
    assert seen == [("a", 1), ("b", 1)]
