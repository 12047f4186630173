"""Faults and safe defaults: writes survive SIGKILL, the shipped weights are never a training output,
nothing unpickles, and the app binds locally with an upload limit unless told otherwise."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cifar_s9.records.checkpoint import load_weights
from cifar_s9.app.jobs import SHIPPED_WEIGHTS, TrainingJobs, check_output_dir
from waiting import HANG_S, SLOW_TEST_S

ROOT = Path(__file__).resolve().parent.parent

# ================================================================ SIGKILL mid-write

# Writes version 1, 2, 3, ... of a big file forever; every tensor / array of version k holds k.
WRITER = r"""
import sys, numpy as np, torch
sys.path.insert(0, {root!r}); sys.path.insert(0, {root!r} + "/tests")
torch.set_num_threads(1)
kind, path = sys.argv[1], sys.argv[2]
from pathlib import Path
if kind == "weights":
    from dataclasses import replace
    from synthetic import tiny_config
    from cifar_s9.records.checkpoint import save_weights
    from cifar_s9.model.net import Net
    cfg = tiny_config()
    blocks = tuple(replace(b, convs=tuple(replace(c, out_channels=256) for c in b.convs)) for b in cfg.blocks)
    model = Net(replace(cfg, blocks=blocks))  # a few MB of float32: each write takes a while
    k = 0
    while True:
        k += 1
        with torch.no_grad():
            for t in model.state_dict().values():
                t.fill_(k)
        save_weights(model, Path(path), {{"version": k}})
else:
    from cifar_s9.data.cifar import save_npz_atomic
    images = np.zeros((4000, 32, 32, 3), np.uint8)  # 12 MB
    k = 0
    while True:
        k += 1
        images.fill(k % 256)
        save_npz_atomic(Path(path), images=images, labels=np.full(4000, k, np.int64))
"""


def kill_mid_write(kind: str, path: Path, rounds: int = 2) -> None:
    """Start the writer, wait until a complete file exists and the next write is under way, SIGKILL."""
    script = WRITER.format(root=str(ROOT))
    for _ in range(rounds):
        proc = subprocess.Popen([sys.executable, "-c", script, kind, str(path)])
        try:
            deadline = time.monotonic() + HANG_S  # a busy machine starts Python and torch late
            first = path.stat().st_mtime_ns if path.exists() else None
            while time.monotonic() < deadline:  # a new complete version, then a temp file being written
                if path.exists() and path.stat().st_mtime_ns != first \
                        and list(path.parent.glob(f".{path.name}.*.tmp")):
                    break
                time.sleep(0.002)
            else:
                pytest.fail("the writer never got going")
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=HANG_S)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL
        yield_check(kind, path)


def yield_check(kind: str, path: Path) -> None:
    if kind == "weights":
        model, card = load_weights(path)  # loads: the file is a complete safetensors file
        values = {float(v) for t in model.state_dict().values() for v in t.float().unique()}
        assert len(values) == 1 and next(iter(values)) >= 1  # one whole version, never a mix
        # the card is renamed into place just after the weights: it is this version or the one before
        assert next(iter(values)) - card["version"] in (0, 1)
    else:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
        k = int(labels[0])
        assert (labels == k).all() and (images == k % 256).all() and images.shape == (4000, 32, 32, 3)


@pytest.mark.slow
@pytest.mark.timeout(SLOW_TEST_S)
@pytest.mark.parametrize("kind, name", [("weights", "model.safetensors"), ("npz", "cache.npz")])
def test_sigkill_mid_write_leaves_the_previous_file_intact(tmp_path, kind, name):
    kill_mid_write(kind, tmp_path / name)
    # a killed writer may leave its temp file, never a partial file under a real name
    real = {p.name for p in tmp_path.iterdir() if not (p.name.startswith(".") and p.name.endswith(".tmp"))}
    assert real <= {name, "model.json"}


# ================================================================ the shipped weights are read-only

@pytest.mark.parametrize("runs_dir", [SHIPPED_WEIGHTS, SHIPPED_WEIGHTS / "app",
                                      ROOT / "runs" / ".." / "weights" / "x"])
def test_training_output_cannot_be_the_shipped_weights_folder(runs_dir):
    with pytest.raises(ValueError, match="protected"):
        TrainingJobs(runs_dir, lambda: None)


def test_a_symlink_into_the_weights_folder_is_seen_through(tmp_path):
    protected = tmp_path / "weights"
    protected.mkdir()
    (tmp_path / "innocent").symlink_to(protected)
    with pytest.raises(ValueError, match="protected"):
        check_output_dir(tmp_path / "innocent" / "runs", (protected,))
    assert check_output_dir(tmp_path / "runs", (protected,)) == (tmp_path / "runs").resolve()


def test_the_app_refuses_a_runs_folder_inside_weights(weights_path, tmp_path, monkeypatch):
    import app
    with pytest.raises(ValueError, match="protected"):
        app.configure(weights=weights_path, runs_dir=SHIPPED_WEIGHTS / "runs")
    monkeypatch.setenv("CIFAR_S9_APP_RUNS", str(SHIPPED_WEIGHTS))
    with pytest.raises(ValueError, match="protected"):
        app.configure(weights=weights_path)
    monkeypatch.delenv("CIFAR_S9_APP_RUNS")
    state = app.configure(weights=weights_path, runs_dir=tmp_path / "runs")
    assert SHIPPED_WEIGHTS.resolve() not in state.jobs.runs_dir.parents


# ================================================================ nothing unpickles

SOURCES = sorted((ROOT / "cifar_s9").rglob("*.py")) + [ROOT / "app.py"]


def test_every_torch_load_is_weights_only_and_nothing_imports_pickle():
    assert len(SOURCES) > 10
    for path in SOURCES:
        text = path.read_text()
        for call in re.finditer(r"torch\.load\(", text):
            args = text[call.end():text.index(")", call.end())]
            assert "weights_only=True" in args, f"{path.name}: torch.load without weights_only=True"
        assert not re.search(r"^\s*(import|from)\s+(c?pickle|dill|joblib|shelve)\b", text, re.M), path.name
        assert "pickle.load" not in text and "allow_pickle=True" not in text, path.name
        for call in re.finditer(r"np\.load\(", text):
            args = text[call.end():text.index(")", call.end())]
            assert "allow_pickle=False" in args, f"{path.name}: np.load without allow_pickle=False"


def test_the_grep_would_catch_an_unsafe_load(tmp_path):
    """The check above can fail: run its pattern on a line it must flag."""
    bad = "state = torch.load(path, map_location='cpu')"
    args = bad[bad.index("torch.load(") + 11:bad.index(")", bad.index("torch.load("))]
    assert "weights_only=True" not in args


# ================================================================ safe launch defaults

def test_launch_binds_locally_with_an_upload_limit(monkeypatch):
    import app
    from gradio.utils import _parse_file_size
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    options = app.launch_options()
    assert options["server_name"] == "127.0.0.1" and options["share"] is False
    assert 0 < _parse_file_size(options["max_file_size"]) <= 100 * 1024 * 1024
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    assert app.launch_options()["server_name"] == "0.0.0.0"


def test_main_uses_the_safe_options(monkeypatch, weights_path, tmp_path):
    import app
    seen = {}
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.setenv("CIFAR_S9_APP_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(app.demo, "queue", lambda **kw: seen.setdefault("queue", kw) and app.demo)
    monkeypatch.setattr(app.demo, "launch", lambda **kw: seen.setdefault("launch", kw))
    monkeypatch.setattr(app.cleanup, "keep_pruned", lambda *a, **kw: seen.setdefault("prune", (a, kw)))
    app.main(["--weights", str(weights_path)])
    assert seen["launch"]["server_name"] == "127.0.0.1"
    assert seen["launch"]["max_file_size"] == app.MAX_UPLOAD
    assert seen["launch"]["app_kwargs"]["middleware"]  # request bodies capped before reading
    (folder,), caps = seen["prune"]  # the upload folder is kept small while the app runs
    assert caps["max_total_bytes"] and caps["max_age_s"] and callable(caps["keep"])
    assert seen["queue"]["max_size"] and seen["queue"]["default_concurrency_limit"] <= 8


def test_no_handler_takes_a_path_from_the_user():
    """Inputs that reach the handlers: uploads (gr.Image, gr.File filled by the server), sliders,
    dropdowns and state; no visible Textbox the user could type a server path into (the visible
    ones are read-only outputs: the links to share, issue 28). The only text inputs are the
    hidden ones of named API endpoints (layer, class and scale names that the package checks
    against fixed lists); test_http_hostile sends every endpoint server paths."""
    import app
    import gradio as gr
    for block in app.demo.blocks.values():
        assert not isinstance(block, gr.FileExplorer), block
        if isinstance(block, gr.Textbox):
            assert not block.visible or block.interactive is False, block
    for fn in app.demo.fns.values():
        if any(isinstance(b, gr.Textbox) for b in fn.inputs):
            assert fn.api_name and fn.api_visibility != "private", fn.name


def test_every_file_input_is_guarded():
    """Every gr.Image input goes through uploads.guard_image, and no input that carries files
    makes the server download a web address (uploads.refuse_downloads)."""
    import app
    import gradio as gr
    inputs = {b._id: b for fn in app.demo.fns.values() for b in fn.inputs}
    images = [b for b in inputs.values() if isinstance(b, gr.Image)]
    assert images
    for block in images:
        assert "preprocess" in vars(block), f"gr.Image {block._id} is not wrapped by guard_image"
    for block in inputs.values():
        if isinstance(block, (gr.Image, gr.File, gr.Gallery, gr.Audio, gr.Video, gr.Model3D)):
            assert getattr(block, "_refuses_downloads", False), f"{type(block).__name__} {block._id}"
