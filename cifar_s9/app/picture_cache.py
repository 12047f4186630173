"""Gradio's cache of output pictures, written atomically.

Gradio names each output picture by the hash of its bytes and rewrites the file in place every
time a handler returns the same picture again (`Path.write_bytes` truncates first). A visitor
downloading it meanwhile gets the length from the old file and then an empty body: under 64
users clicking the same examples, 4 of 640 explain requests failed with "peer closed connection
without sending complete message body". Here the bytes go to a temporary file that replaces the
final name in one step, and a name that already exists (the same bytes, by construction) is left
alone.
"""
from __future__ import annotations

from pathlib import Path

from ..atomic import write_bytes_atomic


def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
    """Gradio's `processing_utils.save_pil_to_cache`, with an atomic write."""
    from gradio import processing_utils as pu

    data = pu.encode_pil_to_bytes(img, format)
    path = (Path(cache_dir) / pu.hash_bytes(data) / f"{name}.{format}").resolve()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, data)
    return str(path)


def install() -> None:
    """Make Gradio's output pictures use `save_pil_to_cache` (idempotent)."""
    from gradio import processing_utils as pu

    pu.save_pil_to_cache = save_pil_to_cache
