"""The command line end to end, on synthetic folders, with JSON last lines and exit codes."""
from __future__ import annotations

import json

import pytest
import torch
from synthetic import tiny_config

from cifar_s9.records.checkpoint import card_path, load_resume, load_weights, save_weights
from cifar_s9.cli import main
from cifar_s9.model.net import PRESETS, Net, build_model
from cifar_s9.model.receptive_field import model_receptive_field


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, no_data_env):
    """Run in tmp_path (the decode cache is relative to the working directory) without git calls."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("cifar_s9.records.provenance.git_commit", lambda *a, **k: "test-commit")


def last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_summary_json(capsys, preset):
    args = ["summary", "--json"] + ([] if preset == "default" else ["--preset", preset])
    student = preset in PRESETS  # a teacher breaks the rules on purpose: exit 1, its failures listed
    assert main(args) == (0 if student else 1)
    out = capsys.readouterr().out
    result = last_json(out)
    model = build_model(preset)
    assert result["preset"] == preset
    assert result["params"] == model.num_params() and (result["params"] < 200_000) == student
    assert result["receptive_field"] == model_receptive_field(model)[1]
    assert result["convs_per_block"] == [3, 3, 3, 3]
    assert result["dilated"] >= 1 and result["gap"] is True and result["ok"] is student
    assert out.count("[PASS]") + out.count("[FAIL]") == 6 and ("[FAIL]" not in out) == student
    assert "C4.conv3" in out  # the receptive-field table is printed too


@pytest.mark.parametrize("name, rf", [("default", 81), ("seed", 121)])  # worked out in test_receptive_field.py
def test_summary_receptive_fields_by_hand(capsys, name, rf):
    assert main(["summary", "--json", "--preset", name]) == 0
    assert last_json(capsys.readouterr().out)["receptive_field"] == rf


def test_summary_without_json_prints_no_json(capsys):
    assert main(["summary"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("[PASS]")


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    model = Net(tiny_config()).eval()
    path = tmp_path / "w" / "tiny.safetensors"
    save_weights(model, path, {"note": "test"})
    return path, model


@pytest.mark.parametrize("tta", [False, "flip", "flip-shift"])
def test_evaluate_json(capsys, weights, dataset_dir, tta):
    path, model = weights
    args = ["evaluate", "--weights", str(path), "--data-dir", str(dataset_dir), "--json"]
    flag = {False: [], "flip": ["--tta"], "flip-shift": ["--tta-shift"]}[tta]
    assert main(args + flag) == 0
    result = last_json(capsys.readouterr().out)
    assert 0.0 <= result["accuracy"] <= 1.0
    assert result["n"] == 20  # 2 test images per class
    assert result["params"] == model.num_params()
    assert result["tta"] == tta
    assert set(result["per_class_accuracy"]) >= {"airplane", "truck"}
    assert "test" in result["data"]


def test_evaluate_a_bare_class_folder(capsys, weights, tmp_path):
    from synthetic import write_class_folders

    write_class_folders(tmp_path / "mine", per_class=1, classes=("cat", "dog", "ship"))
    assert main(["evaluate", "--weights", str(weights[0]), "--data-dir", str(tmp_path / "mine"), "--json"]) == 0
    assert last_json(capsys.readouterr().out)["n"] == 3


def test_tiny_train_writes_weights_card_and_resume(capsys, dataset_dir, tmp_path):
    out = tmp_path / "run" / "model.safetensors"
    args = ["train", "--recipe", "quick", "--data-dir", str(dataset_dir), "--subset", "40",
            "--epochs", "1", "--batch-size", "16", "--threads", "1", "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    result = last_json(capsys.readouterr().out)
    assert result["weights"] == str(out) and result["epochs"] == 1
    assert 0.0 <= result["accuracy"]["test"]["plain"] <= 1.0
    assert out.is_file() and card_path(out).is_file()
    resume = out.with_name("resume.pt")
    assert resume.is_file() and load_resume(resume)["epoch"] == 1

    model, card = load_weights(out)
    assert model.config == build_model("default").config  # the quick recipe's preset
    assert card["recipe"] == "quick" and card["epochs"] == 1
    assert card["train_config"]["batch_size"] == 16 and card["train_config"]["subset"] == 40
    assert card["train_data"]["n"] == 40
    assert card["receptive_field"] == 81
    assert card["git_commit"] == "test-commit" and "torch" in card and "device" in card
    assert set(card["accuracy"]["test"]) == {"data", "n", "plain", "tta"}
    assert len(card["history"]) == 1

    # and the resume file continues the run to a second epoch
    assert main(["train", "--recipe", "quick", "--data-dir", str(dataset_dir), "--resume", str(resume),
                 "--epochs", "2", "--out", str(out), "--no-test"]) == 0
    assert last_json(capsys.readouterr().out)["epochs"] == 2
    assert load_resume(resume)["epoch"] == 2
    assert len(load_weights(out)[1]["history"]) == 2


def test_resume_refuses_the_flags_it_would_ignore(dataset_dir, tmp_path, capsys):
    """A resumed run keeps its file's settings: a new --lr or --preset is refused by name (before:
    silently ignored), and --threads, which only says where it runs, applies."""
    out, resume = tmp_path / "m.safetensors", tmp_path / "resume.pt"
    base = ["train", "--recipe", "quick", "--data-dir", str(dataset_dir), "--subset", "40", "--batch-size", "20",
            "--epochs", "1", "--out", str(out), "--checkpoint", str(resume), "--no-test", "--no-track"]
    assert main(base) == 0
    capsys.readouterr()
    again = ["train", "--recipe", "quick", "--data-dir", str(dataset_dir), "--resume", str(resume),
             "--out", str(out), "--checkpoint", str(resume), "--no-test", "--no-track", "--epochs", "2"]
    assert main(again + ["--lr", "0.5", "--preset", "seed"]) == 2
    assert_one_line_error(capsys, "--preset, --lr cannot change a resumed run", "--threads")
    assert load_resume(resume)["epoch"] == 1  # nothing trained
    assert main(again + ["--threads", "1"]) == 0
    state = load_resume(resume)
    assert state["epoch"] == 2 and state["train_config"]["threads"] == 1


def assert_one_line_error(capsys, *words):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    for w in words:
        assert w in lines[0]
    assert "Traceback" not in captured.err


def test_missing_data_dir_exits_2(capsys, weights, tmp_path):
    assert main(["evaluate", "--weights", str(weights[0]), "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert_one_line_error(capsys, "nowhere", "--data-dir")
    assert main(["train", "--recipe", "quick", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert_one_line_error(capsys, "is not a directory")


@pytest.mark.parametrize("content", [b"", b"\x89PNG not weights", None])
def test_corrupt_weights_exit_2(capsys, dataset_dir, tmp_path, weights, content):
    path = tmp_path / "bad.safetensors"
    if content is None:  # a truncated real checkpoint
        path.write_bytes(weights[0].read_bytes()[:200])
    else:
        path.write_bytes(content)
    assert main(["evaluate", "--weights", str(path), "--data-dir", str(dataset_dir)]) == 2
    assert_one_line_error(capsys, "bad.safetensors")


def test_missing_weights_exit_2(capsys, dataset_dir, tmp_path):
    assert main(["evaluate", "--weights", str(tmp_path / "none.safetensors"), "--data-dir", str(dataset_dir)]) == 2
    assert_one_line_error(capsys, "no checkpoint")


def test_invalid_training_numbers_exit_2(capsys, dataset_dir):
    assert main(["train", "--recipe", "quick", "--data-dir", str(dataset_dir), "--epochs", "0"]) == 2
    assert_one_line_error(capsys, "epochs must be in [1, 1000]")


def test_unknown_preset_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["summary", "--preset", "vgg"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_train_distils_and_fine_tunes_from_weights(capsys, dataset_dir, tmp_path):
    base = ["train", "--recipe", "quick", "--data-dir", str(dataset_dir), "--subset", "40",
            "--epochs", "1", "--batch-size", "16", "--threads", "1", "--device", "cpu", "--no-test"]
    teacher = tmp_path / "teacher" / "model.safetensors"
    assert main(base + ["--out", str(teacher)]) == 0
    student = tmp_path / "student" / "model.safetensors"
    assert main(base + ["--out", str(student), "--init-weights", str(teacher), "--teacher", str(teacher),
                        "--teacher", str(teacher), "--distill-alpha", "0.5", "--distill-temperature", "2",
                        "--pct-start", "0.1"]) == 0
    capsys.readouterr()
    cfg = load_weights(student)[1]["train_config"]
    assert cfg["teachers"] == [str(teacher), str(teacher)] and cfg["init_weights"] == str(teacher)
    assert cfg["distill_alpha"] == 0.5 and cfg["distill_temperature"] == 2.0 and cfg["pct_start"] == 0.1

    assert main(base + ["--out", str(student), "--teacher", str(tmp_path / "gone.safetensors")]) == 2
    assert_one_line_error(capsys, "no weights file at", "gone.safetensors")


def test_progress_bar_follows_a_replanned_total(capsys):
    from cifar_s9.cli import ProgressPrinter
    from cifar_s9.train.events import StepEvent

    printer = ProgressPrinter(total_steps=100, done_steps=0)
    printer(StepEvent(epoch=1, step=10, total_steps=100, loss=1.0, lr=0.1, images_per_s=1.0, eta_s=1.0))
    printer(StepEvent(epoch=1, step=20, total_steps=140, loss=1.0, lr=0.1, images_per_s=1.0, eta_s=1.0))
    assert printer.bar.total == 140 and printer.bar.n == 20
    printer.close()


def test_train_with_a_validation_split_never_reads_the_test_set(capsys, dataset_dir, tmp_path, monkeypatch):
    import cifar_s9.cli as cli
    real_load = cli.load_split
    monkeypatch.setattr(cli, "load_split", lambda split, *a, **k: (
        pytest.fail("the test set was read") if split == "test" else real_load(split, *a, **k)))
    out = tmp_path / "run" / "model.safetensors"
    assert main(["train", "--recipe", "quick", "--data-dir", str(dataset_dir), "--val-per-class", "1",
                 "--epochs", "1", "--batch-size", "10", "--threads", "1", "--device", "cpu",
                 "--out", str(out)]) == 0
    card = load_weights(out)[1]
    assert card["train_data"]["n"] == 30  # 4 per class, 1 held back
    assert card["validation"]["per_class"] == 1 and card["validation"]["n"] == 10
    assert set(card["accuracy"]) == {"validation"}
    assert card["history"][0]["eval_acc"] is not None  # the per-epoch figure is the validation one
    assert card["history"][0]["eval_split"] == "validation"


# ---------------------------------------------------------------- evaluate --ensemble

def test_evaluate_ensemble_reports_each_member_and_their_average(capsys, dataset_dir, tmp_path):
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(tmp_path / f"m{seed}.safetensors")
        save_weights(Net(tiny_config()).eval(), paths[-1], {})
    alone = []
    for path in paths:
        assert main(["evaluate", "--weights", str(path), "--data-dir", str(dataset_dir), "--json"]) == 0
        alone.append(last_json(capsys.readouterr().out)["accuracy"])
    assert main(["evaluate", "--ensemble", *map(str, paths), "--data-dir", str(dataset_dir), "--json"]) == 0
    out = capsys.readouterr().out
    result = last_json(out)
    assert [m["accuracy"] for m in result["members"]] == pytest.approx(alone)
    assert [m["weights"] for m in result["members"]] == list(map(str, paths))
    assert result["n"] == 20 and result["tta"] is False and 0.0 <= result["ensemble_accuracy"] <= 1.0
    assert f"ensemble of 2: {result['ensemble_accuracy']:.4f} on 20 images" in out
    # an ensemble of one network is that network
    assert main(["evaluate", "--ensemble", str(paths[0]), "--data-dir", str(dataset_dir), "--json"]) == 0
    assert last_json(capsys.readouterr().out)["ensemble_accuracy"] == pytest.approx(alone[0])


def test_evaluate_ensemble_errors(capsys, dataset_dir, tmp_path, weights):
    assert main(["evaluate", "--ensemble", str(weights[0]), str(tmp_path / "gone.safetensors"),
                 "--data-dir", str(dataset_dir)]) == 2
    assert_one_line_error(capsys, "gone.safetensors")
    with pytest.raises(SystemExit) as info:  # one network or an ensemble, not both
        main(["evaluate", "--weights", str(weights[0]), "--ensemble", str(weights[0])])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# ---------------------------------------------------------------- finalize

def _finished_run(path, epochs: int, seed: int = 0):
    """A tiny network saved as `train` saves a finished run: card with history and wall time."""
    torch.manual_seed(seed)
    history = [{"epoch": e, "epochs": epochs, "train_loss": 2.0 / e, "train_acc": 0.1 * e,
                "test_loss": 2.1 / e, "test_acc": 0.1 * e} for e in range(1, epochs + 1)]
    save_weights(Net(tiny_config()).eval(), path,
                 {"recipe": "quick", "preset": "default", "epochs": epochs, "wall_time_s": 10.0 * epochs,
                  "history": history, "train_data": {"source": "somewhere", "n": 40}})
    return path


def test_finalize_measures_what_evaluate_reproduces(capsys, dataset_dir, tmp_path):
    run = _finished_run(tmp_path / "run" / "model.safetensors", epochs=3)
    clean = tmp_path / "clean"
    from synthetic import write_class_folders
    write_class_folders(clean, per_class=1, seed=7)
    out, curves = tmp_path / "ship" / "model.safetensors", tmp_path / "fig" / "curves.png"
    assert main(["finalize", str(run), "--data-dir", str(dataset_dir), "--clean-dir", str(clean),
                 "--hardware", "a test machine", "--out", str(out), "--curves", str(curves)]) == 0
    printed = last_json(capsys.readouterr().out)
    model, card = load_weights(out)
    assert card["hardware"] == "a test machine" and card["measured_on"] == "CPU, fp32"
    assert card["code_commit_at_export"] == "test-commit" and card["receptive_field"] == 81
    assert card["train_data"]["n"] == 40 and "JPEG" in card["train_data"]["source"]
    assert set(card["accuracy"]) == {"test", "clean_check"}
    assert card["accuracy"]["test"]["n"] == 20 and card["accuracy"]["clean_check"]["n"] == 10
    assert printed["accuracy"]["test"]["plain"] == card["accuracy"]["test"]["plain"]
    assert curves.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the card's figures are what `evaluate` measures on the finalized weights
    for tta in (False, True):
        assert main(["evaluate", "--weights", str(out), "--data-dir", str(dataset_dir), "--json"]
                    + (["--tta"] if tta else [])) == 0
        measured = last_json(capsys.readouterr().out)
        assert card["accuracy"]["test"]["tta" if tta else "plain"] == round(measured["accuracy"], 4)
        if not tta:
            assert card["accuracy"]["test"]["per_class_plain"] == measured["per_class_accuracy"]


def test_finalize_chains_a_fine_tune_onto_its_base_card(capsys, dataset_dir, tmp_path):
    base = _finished_run(tmp_path / "base" / "model.safetensors", epochs=2)
    tune = _finished_run(tmp_path / "tune" / "model.safetensors", epochs=3, seed=1)
    out = tmp_path / "ship" / "model.safetensors"
    assert main(["finalize", str(tune), "--data-dir", str(dataset_dir), "--hardware", "here", "--out", str(out),
                 "--curves", "", "--base-card", str(card_path(base)), "--stage-names", "full", "distill2",
                 "--train-data", "40 colour squares"]) == 0
    printed = last_json(capsys.readouterr().out)
    assert printed["curves"] is None and not (tmp_path / "assets").exists()
    card = load_weights(out)[1]
    assert [s["name"] for s in card["stages"]] == ["full", "distill2"]
    assert card["epochs"] == 5 and card["wall_time_s"] == 50.0
    assert [h["stage"] for h in card["history"]] == ["full"] * 2 + ["distill2"] * 3
    assert set(card["accuracy"]) == {"test"}  # no --clean-dir
    assert card["train_data"] == {"source": "40 colour squares", "n": 40}


def test_finalize_errors_are_one_line(capsys, dataset_dir, tmp_path):
    run = _finished_run(tmp_path / "run" / "model.safetensors", epochs=1)
    common = ["--data-dir", str(dataset_dir), "--hardware", "here", "--out", str(tmp_path / "o.safetensors")]
    (tmp_path / "broken.json").write_text("{not json")
    assert main(["finalize", str(run), *common, "--base-card", str(tmp_path / "broken.json")]) == 2
    assert_one_line_error(capsys, "base card", "broken.json")
    assert main(["finalize", str(tmp_path / "none.safetensors"), *common]) == 2
    assert_one_line_error(capsys, "no checkpoint")
    assert not (tmp_path / "o.safetensors").exists()


def test_teacher_bank_then_a_student_from_the_bank(capsys, tmp_path):
    from synthetic import make_dataset_dir
    data = make_dataset_dir(tmp_path / "cifar", train_per_class=12, test_per_class=1)
    out = tmp_path / "tb"
    assert main(["teacher-bank", "--data-dir", str(data), "--out", str(out), "--teachers", "2",
                 "--views", "3", "--epochs", "1", "--widths", "8", "16", "16", "--batch-size", "20",
                 "--val-per-class", "2", "--threads", "1"]) == 0
    result = last_json(capsys.readouterr().out)
    assert [t["file"] for t in result["teachers"]] == ["t0.safetensors", "t1.safetensors"]
    assert (out / "bank" / "bank.json").is_file() and result["views"] == 3
    # the student holds back the same validation split, so the bank matches its images
    student = tmp_path / "student" / "model.safetensors"
    assert main(["train", "--recipe", "quick", "--data-dir", str(data), "--val-per-class", "2",
                 "--logit-bank", str(out / "bank"), "--batch-size", "20", "--epochs", "1",
                 "--threads", "1", "--device", "cpu", "--out", str(student)]) == 0
    assert load_weights(student)[1]["train_config"]["logit_bank"] == str(out / "bank")
    # another split is another set of images: refused with a readable error
    assert main(["train", "--recipe", "quick", "--data-dir", str(data), "--val-per-class", "3",
                 "--logit-bank", str(out / "bank"), "--epochs", "1", "--out", str(student)]) == 2
    assert "other training images" in capsys.readouterr().err
