"""A trained run to take home: one zip with everything needed to use and check it elsewhere.

    model.safetensors            the weights (safetensors: loading them runs no code)
    model.json                   the model card, plus `sample_check`: the accuracy on the bundled sample
    augmentation_pipeline.json   the training augmentation, albumentations' own form (`A.load`)
    training_config.json         preset, TrainConfig and AugmentConfig of the run
    evaluate.py                  reloads the weights and scores them with the package's command line
    README.md                    what the files are, the recorded accuracy, how to check it

`python evaluate.py` prints the accuracy on the 500 CIFAR-10 test images bundled with cifar_s9,
which `sample_check` records (so anyone can see they got the same network); `python evaluate.py
DATA_DIR` scores DATA_DIR/test instead. Built from the run's weights and card, checked as a pair
(`load_weights`), bounded in size, written atomically. The names inside are fixed and every text
of the card and the config passes through the caller's `scrub` (the app's `redact.scrub`), so no
server path travels in it.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Callable

from ..atomic import write_atomic
from ..data.app_data import load_sample
from ..data.augment import AugmentConfig, pipeline_json
from ..errors import UserError
from .checkpoint import APP_LIMITS, load_weights

WEIGHTS, CARD, PIPELINE, CONFIG, SCRIPT, README = (
    "model.safetensors", "model.json", "augmentation_pipeline.json", "training_config.json",
    "evaluate.py", "README.md")
MAX_CARD_BYTES = 1 * 2**20        # a 50-epoch app run's card is about 20 KB
MAX_BUNDLE_BYTES = 8 * 2**20      # weights (at most APP_LIMITS' 2 MB) and text; deflated
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed: the same run gives the same bytes

EVALUATE_PY = '''"""Reload this run's weights and score them with cifar_s9's command line:

    python evaluate.py            the 500 CIFAR-10 test images bundled with cifar_s9
    python evaluate.py DATA_DIR   DATA_DIR/test/<class>/* (or DATA_DIR as class folders)

Needs the cifar_s9 package (`pip install` its checkout, or PYTHONPATH=<checkout>). The last line
printed is JSON; on the bundled sample its accuracy is model.json's sample_check.accuracy.
"""
import sys
from pathlib import Path

from cifar_s9.cli import main

data = ["--data-dir", sys.argv[1]] if len(sys.argv) > 1 else ["--sample"]
sys.exit(main(["evaluate", "--weights", str(Path(__file__).with_name("model.safetensors")), "--json", *data]))
'''


def scrub_texts(value, scrub: Callable[[str], str]):
    """`value` (a card, a config) with `scrub` applied to every string in it, keys included."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(str(k)): scrub_texts(v, scrub) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_texts(v, scrub) for v in value]
    return value


def sample_check(model, demo_only: bool) -> dict:
    """The network's accuracy on the bundled sample, computed as `evaluate.py` computes it."""
    from ..analysis.evaluate import evaluate

    sample = load_sample()
    ev = evaluate(model, sample, "cpu", tta=False)
    check = {"data": sample.source, "n": ev.n, "accuracy": ev.accuracy, "command": "python evaluate.py"}
    if demo_only:  # the app trains on this sample when it has no dataset
        check["note"] = ("this run trained on images of this sample (the app had no dataset): a "
                         "check that the network is the same one, not a test accuracy")
    return check


def bundle_parts(weights: Path, scrub: Callable[[str], str], name: str | None = None) -> dict[str, bytes]:
    """{file name in the zip: bytes} for the run whose weights are `weights` (its card beside)."""
    weights = Path(weights)
    size = weights.stat().st_size if weights.is_file() else 0
    if not 0 < size <= APP_LIMITS.max_file_bytes:
        raise UserError("that run's weights are missing or larger than a run of this app can be")
    card_file = weights.with_suffix(".json")
    if card_file.is_file() and card_file.stat().st_size > MAX_CARD_BYTES:
        raise UserError("that run's model card is too large to bundle")
    model, card = load_weights(weights, limits=APP_LIMITS)  # the card must be these weights' own
    card = scrub_texts(card, scrub)
    card["sample_check"] = sample_check(model, bool(card.get("train_data", {}).get("demo_only")))
    aug = AugmentConfig.from_dict(card.get("aug_config") or {})
    config = {"preset": card.get("preset"), "train_config": card.get("train_config"),
              "aug_config": aug.to_dict(), "epochs_trained": card.get("epochs")}
    title = scrub(name or weights.parent.name)
    return {WEIGHTS: weights.read_bytes(), CARD: _json(card), PIPELINE: pipeline_json(aug).encode(),
            CONFIG: _json(config), SCRIPT: EVALUATE_PY.encode(), README: readme(title, card).encode()}


def readme(title: str, card: dict) -> str:
    """The bundle's README: the run in two lines, its files, and how to check it."""
    check, data = card["sample_check"], card.get("train_data") or {}
    recorded = "; ".join(f"{split}: {acc.get('plain', 0):.2%} on {acc.get('n', '?')} images ({acc.get('data', '')})"
                         for split, acc in (card.get("accuracy") or {}).items() if isinstance(acc, dict))
    params = card.get("params")
    note = f"\nNote: {check['note']}.\n" if "note" in check else ""
    return f"""# cifar_s9 run {title}

Preset `{card.get("preset")}`, {card.get("epochs")} epoch(s) on {data.get("n", "?")} images ({data.get("source", "")}),
{f"{params:,}" if isinstance(params, int) else "?"} parameters. Accuracy recorded during training: {recorded or "none"}.

| file | what |
| --- | --- |
| `{WEIGHTS}` | the weights (safetensors; the network's config is in its metadata) |
| `{CARD}` | the model card: configs, per-epoch history, device, `sample_check` |
| `{PIPELINE}` | the training augmentation: `albumentations.load("{PIPELINE}")` |
| `{CONFIG}` | preset, training config and augmentation settings |
| `{SCRIPT}` | reloads the weights and scores them |

Check it: with cifar_s9 installed (or `PYTHONPATH=<its checkout>`), `python {SCRIPT}` scores the
{check["n"]} test images bundled with cifar_s9 and should print accuracy {check["accuracy"]:.4f}
(`sample_check` in the card); `python {SCRIPT} DATA_DIR` scores a CIFAR-10 folder.
{note}"""


def _json(data: dict) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()


def build_bundle(weights: Path, out: Path, scrub: Callable[[str], str], name: str | None = None) -> Path:
    """Write the zip of the run whose weights are `weights` to `out` (atomically); UserError for
    weights or a card that do not belong together, or a bundle over MAX_BUNDLE_BYTES."""
    parts = bundle_parts(weights, scrub, name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in parts.items():
            info = zipfile.ZipInfo(member, date_time=ZIP_TIME)
            info.compress_type, info.external_attr = zipfile.ZIP_DEFLATED, 0o644 << 16
            zf.writestr(info, data)
    if buffer.tell() > MAX_BUNDLE_BYTES:
        raise UserError(f"that run's bundle would be over {MAX_BUNDLE_BYTES / 2**20:.0f} MB")
    write_atomic(Path(out), lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))
    return Path(out)
