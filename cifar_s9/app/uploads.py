"""Where a visitor's image may come from, and the Gradio hook that enforces it.

Gradio's `gr.Image` accepts four payloads over plain HTTP, and three of them bypass its own
checks: `{"url": "data:..."}` is fully decoded (and re-encoded) before any handler runs;
`{"path": ...}` *without* `"meta"` is not checked against the upload folder at all (only
payloads carrying `"meta": {"_type": "gradio.FileData"}` are); and a `http(s)://` path with
`meta` is downloaded, with no size limit. `guard_image` closes all three on the component
itself, before Gradio's `Image.preprocess` runs:

  - data: URLs and base64: length checked before decoding, header (format, pixel count) checked
    before any pixel is decoded, then the bytes are stored unchanged in Gradio's cache folder;
  - paths: resolved (symlinks, "..") and accepted only inside Gradio's upload folder, then the
    byte size and the header are checked;
  - web addresses: refused (the browser always uploads the file first).

The messages never contain a server path. `cleanup.keep_pruned(upload_folder(), ...)` keeps
the upload folder under an age and a total-size cap (`files_in_use` names what to spare).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..data import images
from ..atomic import write_bytes_atomic
from ..data.images import ImageInputError, UnreadableImage

NOT_UPLOADED = ("the image must be a file uploaded to this app (upload, paste or drop it again); "
                "other server files are never read")
NO_WEB = "files from web addresses are not accepted: download the file, then upload it"


# ---------------------------------------------------------------- paths

def upload_folder() -> Path:
    """Gradio's upload and cache folder (GRADIO_TEMP_DIR, else <system temp>/gradio), resolved."""
    from gradio.utils import get_upload_folder
    return Path(os.path.realpath(get_upload_folder()))


def confine(path: object, roots: Iterable[Path]) -> Path:
    """`path` with symlinks and ".." resolved, if it is an existing file strictly inside one of
    `roots` (themselves resolved); otherwise UnreadableImage with one message for every case
    (absent, outside, not a file), so the answer reveals nothing about the server's files."""
    if not isinstance(path, (str, Path)) or not str(path) or "\x00" in str(path):
        raise UnreadableImage(NOT_UPLOADED)
    try:
        real = Path(os.path.realpath(path, strict=True))
    except (OSError, ValueError):
        raise UnreadableImage(NOT_UPLOADED) from None
    for root in roots:
        root = Path(os.path.realpath(root))
        if real != root and real.is_relative_to(root) and real.is_file():
            return real
    raise UnreadableImage(NOT_UPLOADED)


def is_web_address(value: object) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://", "//"))


def store_bytes(data: bytes, folder: Path, suffix: str) -> Path:
    """Write checked image bytes, unchanged, to `folder/<sha256>/image.<suffix>` (atomically)."""
    path = Path(folder) / hashlib.sha256(data).hexdigest() / f"image.{suffix}"
    if not path.is_file():
        write_bytes_atomic(path, data)
    return path


# ---------------------------------------------------------------- the payload check

@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = images.MAX_BYTES
    max_pixels: int = images.MAX_PIXELS


def checked_image(path: object, url: object, roots: Iterable[Path], cache: Path,
                  limits: ImageLimits = ImageLimits()) -> Path:
    """The file to hand on for an image payload's `path`/`url`, after the checks in the module
    doc; ImageInputError (a ValueError) with a message for the user otherwise. Pure of Gradio."""
    if isinstance(url, str) and url.startswith("data:"):
        data = images.decode_data_url(url, limits.max_bytes)
        suffix = images.check_header(data, limits.max_pixels, limits.max_bytes)
        return store_bytes(data, cache, suffix)
    if is_web_address(path) or (path is None and is_web_address(url)):
        raise UnreadableImage(NO_WEB)
    real = confine(path, roots)
    images.check_header(real, limits.max_pixels, limits.max_bytes)
    return real


# ---------------------------------------------------------------- the Gradio hook

def guard_image(component, limits: ImageLimits = ImageLimits(), roots: Iterable[Path] | None = None):
    """Make a `gr.Image` input safe for a public app; returns the same component.

    How the app uses it, for EVERY image input (Classify, the augmentation lab, any new tab):

        image_in = uploads.guard_image(gr.Image(type="filepath", image_mode=None, ...))

    and then does not wrap it in anything that catches its errors: a refused payload raises
    `gr.Error` with a message for the visitor (no server path in it), and the handler never runs.
    The handler receives the path of a checked file inside Gradio's cache folder.

    The hook is installed on the instance (its `preprocess` and its two resource-moving
    methods), not by subclassing: a gr.Image subclass makes Gradio write a `.pyi` stub beside
    the module that defines it. `roots` defaults to Gradio's upload folder and the component's
    cache folder (the same folder unless GRADIO_TEMP_DIR changed after the component was made).
    """
    import gradio as gr

    decode = component.preprocess
    cache = Path(component.GRADIO_CACHE)
    allowed = tuple(roots) if roots is not None else (upload_folder(), cache)

    def refuse(exc: Exception):
        return gr.Error(str(exc), title="Cannot use this image", print_exception=False)

    def preprocess(payload):
        if payload is None:
            return None
        try:
            path = checked_image(getattr(payload, "path", None), getattr(payload, "url", None),
                                 allowed, cache, limits)
        except ImageInputError as exc:
            raise refuse(exc) from None
        component.temp_files.add(str(path))  # so Gradio's own cache cleanup knows the file
        return decode(type(payload)(path=str(path), orig_name=path.name))

    component.preprocess = preprocess
    return refuse_downloads(component)


def refuse_downloads(target):
    """Make Gradio refuse, instead of download, a file payload whose path is a web address, for
    one component or for every component of a Blocks; returns `target`.

    Gradio fetches `{"path": "https://...", "meta": {...}}` for any file-carrying input (gr.File,
    gr.Image, gr.Gallery...) before the handler runs, with no size limit. The app never needs a
    server-side download (the browser uploads files first), so after building the demo:

        uploads.refuse_downloads(demo)

    (`guard_image` already does this for its image input.)
    """
    import gradio as gr

    if isinstance(getattr(target, "blocks", None), dict):  # a Blocks: every component in it
        for block in list(target.blocks.values()):
            if isinstance(block, gr.components.Component):
                refuse_downloads(block)
        return target
    if getattr(target, "_refuses_downloads", False):
        return target
    move_async = target.async_move_resource_to_block_cache
    move_sync = target.move_resource_to_block_cache

    def refused():
        return gr.Error(NO_WEB, title="Cannot use this file", print_exception=False)

    async def async_move_resource_to_block_cache(url_or_file_path):
        if is_web_address(str(url_or_file_path or "")):
            raise refused()
        return await move_async(url_or_file_path)

    def move_resource_to_block_cache(url_or_file_path):
        if is_web_address(str(url_or_file_path or "")):
            raise refused()
        return move_sync(url_or_file_path)

    target.async_move_resource_to_block_cache = async_move_resource_to_block_cache
    target.move_resource_to_block_cache = move_resource_to_block_cache
    target._refuses_downloads = True
    return target


# ---------------------------------------------------------------- keeping the folder small

def files_in_use(blocks) -> set[Path]:
    """Files a Gradio app must keep in its cache: its components' initial values and examples."""
    kept: set[Path] = set()
    for block in getattr(blocks, "blocks", {}).values():
        kept.update(Path(p) for p in getattr(block, "keep_in_cache", ()))
    return kept
