"""One place for the project's files: a checkout, an installed package, or CIFAR_S9_HOME."""
import importlib
import sys
from pathlib import Path

from cifar_s9 import paths


def test_the_checkout_finds_its_weights_and_assets():
    assert paths.DEFAULT_WEIGHTS.is_file() and paths.SAMPLE_TEST.is_file()
    assert paths.EXAMPLES_DIR.is_dir() and paths.HOME == paths.PACKAGE_DIR.parent


def test_cifar_s9_home_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("CIFAR_S9_HOME", str(tmp_path))
    try:
        reloaded = importlib.reload(paths)
        assert reloaded.HOME == tmp_path.resolve() and reloaded.WEIGHTS_DIR == tmp_path.resolve() / "weights"
    finally:
        monkeypatch.delenv("CIFAR_S9_HOME")
        importlib.reload(paths)


def test_an_installed_package_looks_in_share(monkeypatch, tmp_path):
    """No checkout around the package: <prefix>/share/cifar_s9, where pyproject's data-files go."""
    monkeypatch.delenv("CIFAR_S9_HOME", raising=False)
    (tmp_path / "share" / "cifar_s9" / "weights").mkdir(parents=True)
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    site = tmp_path / "site-packages" / "cifar_s9"
    monkeypatch.setattr(paths, "PACKAGE_DIR", site)
    assert paths._home() == tmp_path / "share" / "cifar_s9"


def test_no_module_walks_up_with_parent_chains():
    package = Path(paths.__file__).parent
    offenders = [p.name for p in package.rglob("*.py")
                 if p.name != "paths.py" and "parent.parent" in p.read_text()]
    assert offenders == []


def test_an_installed_package_carries_every_shipped_file_the_app_reads():
    """pyproject's data-files list each file of weights/ the app opens (a wheel without ood.json
    or the reference design served without its out-of-distribution check or comparison)."""
    import tomllib

    config = tomllib.loads((paths.HOME / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["data-files"]["share/cifar_s9/weights"])
    read = [paths.DEFAULT_WEIGHTS, paths.DEFAULT_WEIGHTS.with_suffix(".json"), paths.REFERENCE_WEIGHTS,
            paths.REFERENCE_WEIGHTS.with_suffix(".json"), paths.OOD_CALIBRATION, paths.FAITHFULNESS]
    missing = [p.name for p in read if f"weights/{p.name}" not in listed]
    assert not missing, missing
    assert all((paths.HOME / name).is_file() for name in listed)
    # and the Coarse Dropout grid the Experiments tab shows (before: an installed app said "not measured yet")
    grid = paths.CUTOUT_GRID.relative_to(paths.HOME)
    assert [str(grid)] == config["tool"]["setuptools"]["data-files"][f"share/cifar_s9/{grid.parent}"]
