"""A trained run to take home (issue 28.3): the zip of a tiny run trained on synthetic data,
unpacked in a fresh folder, runs its own evaluate.py (the package's command line) and prints
the accuracy its card records on the bundled sample; it holds no server path; only the run's
owner gets it, and no name a client sends is ever a path."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from synthetic import make_split
from waiting import HANG_S, SLOW_TEST_S

from cifar_s9.app.jobs import DONE, NotOwner, TrainingJobs, TrainRequest
from cifar_s9.app import redact
from cifar_s9.data.app_data import TrainingData
from cifar_s9.data.augment import AugmentConfig, pipeline_dict
from cifar_s9.errors import UserError
from cifar_s9.records import bundle as B
from cifar_s9.train.trainer import TrainConfig

pytestmark = pytest.mark.timeout(SLOW_TEST_S)  # trains for real; the subprocess imports torch
ROOT = Path(__file__).resolve().parent.parent
OWNER, STRANGER = "session-a", "session-b"
AUG = AugmentConfig(flip_p=0.25, holes_max=3, color_p=0.3)
MEMBERS = {"model.safetensors", "model.json", "augmentation_pipeline.json", "training_config.json",
           "evaluate.py", "README.md"}


def synthetic() -> TrainingData:
    return TrainingData(make_split(64, seed=0, source="synthetic train"), make_split(20, seed=1, source="synthetic test"),
                        "synthetic colours", False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(jobs, run id): one finished 1-epoch run of the default preset on 64 synthetic images."""
    jobs = TrainingJobs(tmp_path_factory.mktemp("runs"), synthetic)
    request = TrainRequest("default", TrainConfig(epochs=1, batch_size=32, lr=0.05, log_every=1, device="cpu",
                                                  threads=1), AUG, eval_images=20)
    job = jobs.start(request, OWNER)
    job.thread.join(HANG_S)
    assert job.snapshot().state == DONE, job.snapshot().error
    return jobs, job.run_id


def unpack(zip_path: Path, folder: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        assert set(names) == MEMBERS and all("/" not in n and ".." not in n for n in names)
        zf.extractall(folder)
    return {n: (folder / n).read_bytes() for n in names}


def test_the_bundle_reproduces_its_cards_sample_accuracy_in_a_fresh_folder(run, tmp_path):
    jobs, run_id = run
    path = jobs.bundle(run_id, OWNER)
    assert path.name == f"cifar_s9-run-{run_id}.zip" and path.parent.name == run_id
    assert path.stat().st_size <= B.MAX_BUNDLE_BYTES
    home = tmp_path / "home"
    home.mkdir()
    unpack(path, home)
    card = json.loads((home / "model.json").read_text())
    check = card["sample_check"]
    assert check["n"] == 500 and check["command"] == "python evaluate.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    done = subprocess.run([sys.executable, "evaluate.py"], cwd=home, env=env, capture_output=True, text=True,
                          timeout=HANG_S)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    assert printed["n"] == 500 and printed["accuracy"] == check["accuracy"]
    assert card["epochs"] == 1 and card["aug_config"] == AUG.to_dict()


def test_evaluate_py_is_two_lines_of_real_code():
    tree = ast.parse(B.EVALUATE_PY)
    body = [n for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom))
            and not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]  # the docstring
    assert len(body) == 2


def test_the_bundle_holds_the_pipeline_the_config_and_no_server_path(run, tmp_path):
    import albumentations as A  # tests may; the package calls it only in cifar_s9.data.augment

    jobs, run_id = run
    parts = unpack(jobs.bundle(run_id, OWNER), tmp_path)
    pipeline = A.load(str(tmp_path / "augmentation_pipeline.json"))
    assert A.to_dict(pipeline) == pipeline_dict(AUG)  # the run's own augmentation, every parameter
    config = json.loads(parts["training_config.json"])
    assert config["preset"] == "default" and config["aug_config"] == AUG.to_dict()
    assert config["train_config"]["epochs"] == 1 and config["train_config"]["batch_size"] == 32
    assert b"python evaluate.py" in parts["README.md"]
    for name, data in parts.items():
        if name.endswith((".json", ".md", ".py")):
            text = data.decode()
            for server_path in (str(jobs.runs_dir), str(ROOT), str(Path.home()) + "/", "/tmp/"):
                assert server_path not in text, (name, server_path)


def test_the_bundle_is_built_once_and_written_atomically(run):
    jobs, run_id = run
    first = jobs.bundle(run_id, OWNER)
    stamp = first.stat().st_mtime_ns
    assert jobs.bundle(run_id, OWNER) == first and first.stat().st_mtime_ns == stamp
    assert not [p for p in first.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("run_id", ["../../etc/passwd", "/etc/passwd", "", None, 5, ["x"], "x" * 10_000,
                                    "20250101-000000-000000-default"])
def test_no_name_a_client_sends_is_a_path(run, run_id):
    jobs, _ = run
    with pytest.raises(UserError, match="no such training run") as info:
        jobs.bundle(run_id, OWNER)
    assert "/" not in str(info.value)


def test_only_the_runs_owner_gets_its_bundle(run):
    jobs, run_id = run
    with pytest.raises(NotOwner, match="another visitor"):
        jobs.bundle(run_id, STRANGER)


def test_a_card_of_other_weights_or_a_path_in_it(run, tmp_path):
    jobs, run_id = run
    weights = jobs.runs_dir / run_id / "model.safetensors"
    card = json.loads(weights.with_suffix(".json").read_text())
    copy = tmp_path / "copy" / "model.safetensors"
    copy.parent.mkdir()
    copy.write_bytes(weights.read_bytes())
    card["train_data"]["source"] = "/srv/secret/cifar10/train"
    card["train_config"]["init_weights"] = "/srv/secret/base.safetensors"
    copy.with_suffix(".json").write_text(json.dumps(card))
    out = B.build_bundle(copy, tmp_path / "b.zip", scrub=redact.scrub, name="copy")
    parts = unpack(out, tmp_path / "unpacked")
    assert all(b"/srv/secret" not in data for data in parts.values())
    assert json.loads(parts["model.json"])["train_data"]["source"] == "train"
    card["weights_sha256"] = "0" * 64  # a card written for other weights
    copy.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(UserError, match="does not belong to"):
        B.build_bundle(copy, tmp_path / "c.zip", scrub=redact.scrub)
    assert not (tmp_path / "c.zip").exists()


def test_weights_over_the_apps_limit_are_not_bundled(tmp_path):
    big = tmp_path / "model.safetensors"
    big.write_bytes(np.zeros(3 * 2**20, np.uint8).tobytes())
    with pytest.raises(UserError, match="larger than a run of this app"):
        B.build_bundle(big, tmp_path / "big.zip", scrub=redact.scrub)
    assert not (tmp_path / "big.zip").exists()
