"""Atomic file writes: a temp file beside the target, flushed to disk, then renamed into place.

A process killed mid-write leaves the previous file intact (the rename is atomic on POSIX and
Windows); a failed write removes its temp file. A killed process may leave a hidden
`.<name>.<pid>-<thread>.tmp`, which nothing ever reads. The thread is in the name because the app
writes from its handler threads: two visitors writing the same file at once (the same download)
must not share one temp file.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Callable


def temp_path(path: Path) -> Path:
    """The temp file a write to `path` goes through (hidden, same folder, so the rename is atomic)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` to fill a temp file, fsync it, then rename it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def write_json_atomic(path: Path, data: dict) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n"))
