"""Hostile payloads for the security tests (issue 13), built in memory: no dataset, no network."""
from __future__ import annotations

import base64
import functools
import io
import json
import struct
import zlib

import numpy as np
from PIL import Image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.lru_cache(maxsize=2)
def png_bomb(width: int = 12_000, height: int = 12_000) -> bytes:
    """A valid greyscale PNG of width x height black pixels: 144 megapixels in about 140 KB
    (every row is a filter byte and zeros, which deflate to almost nothing)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    z = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def bmp_of_bytes(n_bytes: int = 27 * 2**20) -> bytes:
    """An uncompressed 24-bit BMP of about `n_bytes` (27 MB by default: 3,072 x 3,072 pixels)."""
    side = int((n_bytes / 3) ** 0.5)
    out = io.BytesIO()
    Image.new("RGB", (side, side), (90, 120, 200)).save(out, "BMP")
    return out.getvalue()


def small_png(colour=(0, 130, 200), size: int = 32) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((size, size, 3), colour, np.uint8)).save(out, "PNG")
    return out.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def safetensors_with_config(config: dict, tensors: dict | None = None) -> bytes:
    """A safetensors file whose metadata declares `config` (as our checkpoints do)."""
    import torch
    from safetensors.torch import save

    return save(tensors or {"w": torch.zeros(1)},
                metadata={"format": "cifar_s9", "model_config": json.dumps(config, separators=(",", ":"))})


def blocks_config(n_blocks: int) -> dict:
    """A model config declaring `n_blocks` blocks of three 32-channel convs, written tersely (the
    other fields take their defaults): 20,000 blocks fit in a 1.9 MB file, under the app's 2 MB
    checkpoint cap, so the declared architecture itself must be what refuses it."""
    conv = {"out_channels": 32}
    return {"blocks": [{"convs": [conv] * 3, "residual": False}] * n_blocks}
