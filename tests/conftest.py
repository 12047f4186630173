"""Shared fixtures: tiny checkpoints and synthetic image folders in temporary folders.

No dataset, no network. Data helpers (colour-coded synthetic images, class folders, a tiny
network config) are plain functions in tests/synthetic.py.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest
import torch
from synthetic import free_port, make_dataset_dir, make_split, tiny_config

from cifar_s9.records.checkpoint import save_weights
from cifar_s9.data.cifar import Split
from cifar_s9.model.net import ALL_PRESETS, ModelConfig, build_model


def pytest_configure(config):
    # every run the tests train is recorded by the run tracker (trackio): into a throwaway folder,
    # never the repository's runs/tracker. trackio reads TRACKIO_DIR once, at import.
    os.environ["TRACKIO_DIR"] = tempfile.mkdtemp(prefix="cifar_s9-trackio-")
    config.addinivalue_line("markers", "slow: launches a server or a browser (seconds, not milliseconds)")
    config.addinivalue_line("markers", "browser: needs Playwright and Debian's chromium")
    torch.set_num_threads(1)  # the lab machines have 2 cores; leave one for everything else


def pytest_unconfigure(config):
    folder = os.environ.get("TRACKIO_DIR", "")
    if "cifar_s9-trackio-" in folder:  # only the folder pytest_configure made
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def deterministic():
    """For a test that trains and asserts what was learnt: one thread, deterministic kernels and
    a seeded global RNG, so its result is the same on every run of one machine (another CPU's
    floats still differ: such a test asserts a margin far wider than that, never a value)."""
    threads, was = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was)
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def weights_path(tmp_path_factory):
    """An untrained default-preset checkpoint with a small model card."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    history = [{"epoch": 1, "epochs": 2, "train_loss": 2.0, "train_acc": 0.2, "test_loss": 1.9,
                "test_acc": 0.25, "lr": 0.1, "images_per_s": 100.0, "epoch_time_s": 1.0, "eta_s": 1.0},
               {"epoch": 2, "epochs": 2, "train_loss": 1.8, "train_acc": 0.3, "test_loss": 1.7,
                "test_acc": 0.35, "lr": 0.01, "images_per_s": 100.0, "epoch_time_s": 1.0, "eta_s": 0.0}]
    save_weights(build_model("default").eval(), path,
                 {"preset": "default", "history": history,
                  "accuracy": {"test": {"data": "fixture", "n": 10, "plain": 0.35}}})
    return path


@pytest.fixture(scope="session")
def model(weights_path):
    from cifar_s9.records.checkpoint import load_weights
    return load_weights(weights_path)[0]


@pytest.fixture(params=sorted(ALL_PRESETS))
def preset(request) -> str:
    """Every registered preset: the students the app offers (`model.PRESETS`, under the rules) and
    the command line's teachers (`model.TEACHER_PRESETS`); a new preset is tested once registered."""
    return request.param


@pytest.fixture
def tiny_split() -> Split:
    """64 colour-coded 32x32 images, labels 0..9 in turn."""
    return make_split(64, seed=0)


@pytest.fixture
def dataset_dir(tmp_path):
    """tmp_path/cifar/{train,test}/<class>/*.png: 4 train and 2 test images per class."""
    return make_dataset_dir(tmp_path / "cifar")


@pytest.fixture
def no_data_env(monkeypatch):
    monkeypatch.delenv("CIFAR_S9_DATA_DIR", raising=False)


@pytest.fixture
def tiny_model_config() -> ModelConfig:
    return tiny_config()


@pytest.fixture(scope="module")
def app_client(weights_path, tmp_path_factory):
    """The app launched as `python app.py` launches it (same queue and launch options, so the
    upload limit applies) on a free local port; yields a gradio_client Client."""
    from gradio_client import Client
    import app

    app.configure(weights=weights_path, runs_dir=tmp_path_factory.mktemp("runs"))
    options = {**app.launch_options(), "server_name": "127.0.0.1", "server_port": free_port(),
               "prevent_thread_lock": True, "quiet": True}
    app.demo.queue(**app.QUEUE).launch(**options)
    try:
        yield Client(app.demo.local_url, verbose=False)
    finally:
        app.demo.close()


@pytest.fixture(autouse=True)
def fp32_on_every_cpu(monkeypatch):
    """Training tests compute in fp32 everywhere: with bf16 on by default where the CPU has it,
    their numbers would otherwise depend on which CPU runs them."""
    monkeypatch.setattr("cifar_s9.train.precision.CPU_BF16_BY_DEFAULT", False)
