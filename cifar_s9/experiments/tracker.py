"""Every training run, from the CLI or the app, kept in a local trackio project under `runs/`.

A `RunLogger` is a trainer callback (the trainer itself knows nothing about it): it opens a trackio
run with the run's config, logs each epoch's metrics, and on `finish` the final accuracy and the
checkpoint path. `list_runs` and `run_curves` read the same database back, after a restart too,
and `trackio show --project cifar_s9` opens trackio's own dashboard on it:

    TRACKIO_DIR=runs/tracker trackio show --project cifar_s9

Offline by construction: the storage folder is fixed before trackio is imported, no Space,
server or bucket is ever named (those environment variables are dropped), and trackio's lookup of
a Hugging Face user name (an HTTP call when a token is present) is replaced by "no user".

Disk use is capped: checkpoints the tracker keeps (`checkpoint_path`) are pruned oldest first
beyond `MAX_CHECKPOINT_BYTES`. The tracker deletes only files inside its own checkpoints folder,
never `weights/` or `training/` or a path a CLI run chose with --out.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import paths
from ..train.events import EpochEvent, StepEvent

DEFAULT_DIR = paths.TRACKER_DIR  # git-ignored, like all of runs/
PROJECT = "cifar_s9"
MAX_CHECKPOINT_BYTES = 256 * 2**20       # about 300 checkpoints of the 198K-parameter network
REMOTE_VARIABLES = ("TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL", "TRACKIO_DATASET_ID", "TRACKIO_BUCKET_ID")
_NAME_OK = re.compile(r"[^A-Za-z0-9_.-]+")


def _trackio():
    """trackio, imported with its storage under runs/ and with every remote destination removed."""
    os.environ.setdefault("TRACKIO_DIR", str(DEFAULT_DIR))
    for name in REMOTE_VARIABLES:
        os.environ.pop(name, None)
    import trackio
    import trackio.run

    trackio.run._get_default_namespace = _no_user  # trackio asks huggingface.co/whoami otherwise
    return trackio


def _no_user() -> None:
    return None


def storage_dir() -> Path:
    """Where the trackio database lives (fixed for the process once trackio is imported)."""
    return Path(_trackio().utils.TRACKIO_DIR)


def checkpoints_dir() -> Path:
    return storage_dir() / "checkpoints"


def run_name(label: str) -> str:
    """A unique, filesystem-safe run name: UTC time to the microsecond, then the label."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    return f"{stamp}-{_NAME_OK.sub('_', label)[:60]}"


def checkpoint_path(name: str) -> Path:
    """Where the tracker keeps a run's weights (pruned when the folder passes its cap)."""
    return checkpoints_dir() / f"{_NAME_OK.sub('_', name)}.safetensors"


def chain(*callbacks: Callable | None) -> Callable:
    """One trainer callback that calls each of several in turn (None entries skipped)."""
    live = [c for c in callbacks if c is not None]

    def call(event) -> None:
        for c in live:
            c(event)

    return call


def _quiet():
    """trackio prints banners on stdout; the CLI's last stdout line must stay its JSON result."""
    return contextlib.redirect_stdout(io.StringIO())


class RunLogger:
    """Trainer callback that records one run in the tracker."""

    def __init__(self, name: str, config: dict, group: str | None = None,
                 checkpoint: str | Path | None = None):
        trackio = _trackio()
        self.name, self.checkpoint = name, str(checkpoint) if checkpoint else None
        with _quiet():
            self.run = trackio.init(project=PROJECT, name=name, group=group,
                                    config={**config, "checkpoint": self.checkpoint},
                                    embed=False, auto_log_cpu=False, auto_log_gpu=False)
        # we finish this run ourselves; left as trackio's "current run" it would be finished again
        # at exit (another banner) or by the next init in this thread
        trackio.context_vars.current_run.set(None)
        self.last_epoch = 0
        self.finished = False
        self._warned = False

    def __call__(self, event: StepEvent | EpochEvent) -> None:
        if not isinstance(event, EpochEvent):
            return  # per-step losses stay in the app's live view; the tracker keeps epochs
        self.last_epoch = event.epoch
        # the split's own name: a test-set score logged as val/acc would read as a validation one
        scored = "val" if event.eval_split == "validation" else "test"
        metrics = {"train/loss": event.train_loss, "train/acc": event.train_acc,
                   f"{scored}/loss": event.eval_loss, f"{scored}/acc": event.eval_acc, "lr": event.lr,
                   "images_per_s": event.images_per_s, "epoch_time_s": event.epoch_time_s}
        try:
            self.run.log({k: float(v) for k, v in metrics.items() if v is not None}, step=event.epoch)
        except Exception as exc:  # a full disk must not end the training run: say so once, go on
            if not self._warned:
                self._warned = True
                warnings.warn(f"run tracker: could not log epoch {event.epoch} of {self.name}: {exc}")

    def finish(self, final: dict | None = None, state: str = "done") -> None:
        """Log the final numbers (accuracy, wall time, ...) and close the run; idempotent."""
        if self.finished:
            return
        self.finished = True
        summary = {f"final/{k}": float(v) for k, v in (final or {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        summary["final/completed"] = 1.0 if state == "done" else 0.0
        self.run.log(summary, step=self.last_epoch)
        with _quiet():
            self.run.finish()
        prune_checkpoints()


def track_trainer(trainer, label: str, source: str, checkpoint: str | Path | None, **extra) -> RunLogger:
    """A RunLogger for a constructed Trainer: its recipe, augmentation and data go in the config."""
    test = trainer.eval_data
    config = {"source": source, **extra, "train": trainer.cfg.to_dict(), "aug": trainer.aug_config.to_dict(),
              "n_train": len(trainer.train_split), "train_data": trainer.train_split.source,
              "eval_data": test.source if test is not None else None,
              "n_eval": len(test) if test is not None else 0, "eval_split": trainer.eval_split,
              "device": str(trainer.device)}
    return RunLogger(run_name(label), config, group=source,
                     checkpoint=Path(checkpoint).resolve() if checkpoint else None)


def final_metrics(card: dict) -> dict:
    """The numbers a model card ends with, flat: accuracy (validation if any, else test), epochs,
    wall time."""
    acc = card.get("accuracy") or {}
    scored = acc.get("validation") or acc.get("test") or {}
    final = {"epochs": card.get("epochs"), "wall_time_s": card.get("wall_time_s"),
             "accuracy": scored.get("plain"), "accuracy_tta": scored.get("tta")}
    return {k: v for k, v in final.items() if v is not None}


# ---------------------------------------------------------------- reading back

@dataclass(frozen=True)
class RunRecord:
    name: str
    created: str
    group: str | None
    config: dict
    final: dict          # final/* metrics without the prefix
    checkpoint: str | None

    @property
    def checkpoint_exists(self) -> bool:
        return bool(self.checkpoint) and Path(self.checkpoint).is_file()


def _storage():
    _trackio()
    from trackio.sqlite_storage import SQLiteStorage

    return SQLiteStorage


def _project_exists() -> bool:
    return _storage().get_project_db_path(PROJECT).is_file()


def owner_tag(session: str | None) -> str | None:
    """What the tracker stores about the app visitor who started a run: a digest of their
    session id (never the id itself), so the app can show each visitor their own runs only."""
    if not session:
        return None
    return hashlib.sha256(f"cifar_s9-run-owner:{session}".encode()).hexdigest()[:16]


def visible_runs(session: str | None, limit: int | None = None) -> list[RunRecord]:
    """The runs an app visitor may see: their own and those with no owner (the command line's).
    Another visitor's runs stay invisible: what one visitor does must not change what another sees."""
    tag = owner_tag(session)
    runs = [r for r in list_runs() if r.config.get("owner") in (None, tag)]
    return runs[:limit] if limit else runs


def list_runs(limit: int | None = None) -> list[RunRecord]:
    """Past runs, newest first."""
    if not _project_exists():
        return []
    storage = _storage()
    records = []
    for rec in storage.get_run_records(PROJECT):
        config = storage.get_run_config(PROJECT, rec["name"]) or {}
        final = {}
        for row in storage.get_logs(PROJECT, rec["name"]):
            final.update({k[len("final/"):]: v for k, v in row.items() if k.startswith("final/")})
        records.append(RunRecord(rec["name"], rec.get("created_at") or "", config.get("_Group"),
                                 {k: v for k, v in config.items() if not k.startswith("_")},
                                 final, config.get("checkpoint")))
    records.sort(key=lambda r: (r.created, r.name), reverse=True)
    return records[:limit] if limit else records


def run_curves(name: str) -> dict[str, list]:
    """{"epoch": [...], "train_loss": [...], "val_acc": [...], "test_acc": [...], ...} of one run
    (None where a metric was not logged that epoch: a run scored on the test set has no val_acc)."""
    if not _project_exists() or name not in _storage().get_runs(PROJECT):
        raise KeyError(f"no run named {name!r} in the tracker")
    rows = [r for r in _storage().get_logs(PROJECT, name)
            if not any(k.startswith("final/") for k in r)]
    keys = {"train/loss": "train_loss", "train/acc": "train_acc", "val/loss": "val_loss",
            "val/acc": "val_acc", "test/loss": "test_loss", "test/acc": "test_acc", "lr": "lr",
            "images_per_s": "images_per_s"}
    curves: dict[str, list] = {"epoch": [int(r["step"]) for r in rows]}
    for src, dst in keys.items():
        curves[dst] = [r.get(src) for r in rows]
    return curves


def overlay(name_a: str, name_b: str) -> dict[str, dict[str, list]]:
    """The curves of any two past runs, for one overlaid plot."""
    return {name_a: run_curves(name_a), name_b: run_curves(name_b)}


def prune_checkpoints(max_bytes: int = MAX_CHECKPOINT_BYTES, folder: Path | None = None) -> list[Path]:
    """Delete the oldest checkpoints in the tracker's folder until the rest fit in `max_bytes`;
    returns what was deleted. Only `*.safetensors` (and their `.json` cards) directly inside that
    folder are candidates, and a folder that is, or holds, weights/ or training/ is refused."""
    folder = Path(folder or checkpoints_dir()).resolve()
    for protected in (paths.WEIGHTS_DIR, paths.TRAINING_DIR):
        protected = protected.resolve()
        if folder == protected or protected in folder.parents or folder in protected.parents:
            raise ValueError(f"refusing to prune {folder}: it overlaps the protected {protected}")
    if not folder.is_dir():
        return []
    files = sorted(folder.glob("*.safetensors"), key=lambda p: (p.stat().st_mtime, p.name))
    sizes = {p: p.stat().st_size + _card(p).stat().st_size if _card(p).exists() else p.stat().st_size
             for p in files}
    total, removed = sum(sizes.values()), []
    for p in files:
        if total <= max_bytes:
            break
        p.unlink(missing_ok=True)
        _card(p).unlink(missing_ok=True)
        total -= sizes[p]
        removed.append(p)
    return removed


def _card(weights: Path) -> Path:
    return weights.with_suffix(".json")


def describe(record: RunRecord) -> str:
    """One line for a runs list: name, arm/preset, final accuracy, epochs."""
    acc = record.final.get("accuracy")
    bits = [record.name, record.config.get("arm") or record.config.get("preset") or ""]
    if acc is not None:
        bits.append(f"{100 * acc:.1f}%")
    if record.final.get("epochs") is not None:
        bits.append(f"{int(record.final['epochs'])} epochs")
    return "  ".join(b for b in bits if b)


def config_json(record: RunRecord) -> str:
    return json.dumps(record.config, indent=1, sort_keys=True, default=str)
