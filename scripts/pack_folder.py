"""Pack an image folder into one .npz of raw file bytes (and unpack it), so it travels as one file.

    python scripts/pack_folder.py pack data/cifar10-jpeg data/pack/cifar10-jpeg.npz
    python scripts/pack_folder.py unpack data/pack/cifar10-jpeg.npz data/cifar10-jpeg
"""
import sys
from pathlib import Path

import numpy as np


def pack(src: Path, dst: Path) -> None:
    files = sorted(p for p in src.rglob("*") if p.is_file())
    blobs = [p.read_bytes() for p in files]
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    names = "\n".join(str(p.relative_to(src)) for p in files)
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez(dst, data=np.frombuffer(b"".join(blobs), np.uint8), offsets=offsets,
             names=np.frombuffer(names.encode(), np.uint8))


def unpack(src: Path, dst: Path) -> None:
    with np.load(src) as z:
        data, offsets = z["data"].tobytes(), z["offsets"]
        names = z["names"].tobytes().decode().split("\n")
    for i, name in enumerate(names):
        path = dst / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data[offsets[i]:offsets[i + 1]])


if __name__ == "__main__":
    {"pack": pack, "unpack": unpack}[sys.argv[1]](Path(sys.argv[2]), Path(sys.argv[3]))
