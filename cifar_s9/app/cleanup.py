"""Keeping scratch folders small: Gradio's uploads and the app's training runs.

`prune_folder` deletes whole top-level entries (a file, or a folder such as Gradio's `<hash>/`
or a run's folder) by age, then oldest first down to a total size. It never follows a symlink,
spares what the caller names in `keep`, and only touches entries that `match` accepts, so a
misconfigured folder cannot lose unrelated files.
"""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

# The public app's caps: uploads live an hour (a visitor's image is re-sent with every request
# while the page is open; an expired one just asks for a new upload), at most 500 MB in all.
UPLOAD_CAPS = dict(every_s=60.0, max_age_s=3600.0, max_total_bytes=500 * 2**20)
# Training runs from the app: a day, at most 200 MB in all (a run folder is about 1 MB).
RUN_CAPS = dict(max_age_s=24 * 3600.0, max_total_bytes=200 * 2**20)


def _entry_stats(entry: Path) -> tuple[float, int]:
    """(newest mtime, total bytes) of a file or a folder tree; symlinks count as themselves."""
    st = entry.lstat()
    newest, total = st.st_mtime, st.st_size if not entry.is_dir() or entry.is_symlink() else 0
    if entry.is_dir() and not entry.is_symlink():
        for dirpath, dirnames, filenames in os.walk(entry):  # does not follow symlinks
            for name in dirnames + filenames:
                s = os.lstat(os.path.join(dirpath, name))
                newest = max(newest, s.st_mtime)
                total += s.st_size if name in filenames else 0
    return newest, total


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def prune_folder(folder: Path, max_age_s: float, max_total_bytes: int, keep: Iterable[Path] = (),
                 now: float | None = None, match: Callable[[Path], bool] = lambda entry: True) -> list[Path]:
    """Delete the top-level entries of `folder` (files, or Gradio's `<hash>/` folders) that are
    older than `max_age_s`, then the oldest ones until the rest holds at most `max_total_bytes`.
    An entry holding a path in `keep` (example images Gradio cached at start-up, the run in
    progress) is never deleted; symlinks are removed as links, never followed. Returns what was
    deleted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    kept = {Path(os.path.realpath(p)) for p in keep}
    entries = []
    for entry in folder.iterdir():
        if not match(entry):
            continue
        real = Path(os.path.realpath(entry)) if not entry.is_symlink() else entry
        if any(k == real or real in k.parents for k in kept):
            continue
        try:
            mtime, size = _entry_stats(entry)
        except FileNotFoundError:  # removed meanwhile
            continue
        entries.append((mtime, size, entry))
    entries.sort(key=lambda e: e[0])
    total = sum(size for _, size, _ in entries)
    removed = []
    for mtime, size, entry in entries:
        if now - mtime > max_age_s or total > max_total_bytes:
            _remove(entry)
            removed.append(entry)
            total -= size
    return removed


def keep_pruned(folder: Path, every_s: float, max_age_s: float, max_total_bytes: int,
                keep: Callable[[], Iterable[Path]] = lambda: ()) -> threading.Event:
    """Run `prune_folder` now and every `every_s` seconds in a daemon thread; set the returned
    event to stop. The app calls, after building the demo:

        cleanup.keep_pruned(uploads.upload_folder(), **cleanup.UPLOAD_CAPS,
                            keep=lambda: uploads.files_in_use(demo))
    """
    stop = threading.Event()

    def loop():
        while True:
            try:
                prune_folder(folder, max_age_s, max_total_bytes, keep())
            except OSError:  # a file vanishing under us must not end the cleaning
                pass
            if stop.wait(every_s):
                return

    threading.Thread(target=loop, name="cifar_s9-prune", daemon=True).start()
    return stop
