"""Pack an image folder into one .npz of raw file bytes (and unpack it), so it travels as one file.

    python training/tools/pack_folder.py pack data/cifar10-jpeg data/pack/cifar10-jpeg.npz
    python training/tools/pack_folder.py unpack data/pack/cifar10-jpeg.npz data/cifar10-jpeg

`--test-per-class N` keeps only the first N test images of each class: a lent GPU takes at most
64 MiB of the working tree, and the whole folder (51 MB) with the repository and the wheels
albumentations needs there is over it. The runs then report test accuracy on that subset;
the full test set is measured on the CPU afterwards.
"""
import argparse
from collections import Counter
from pathlib import Path

import numpy as np


def select(files: list[Path], src: Path, test_per_class: int | None) -> list[Path]:
    if test_per_class is None:
        return files
    seen: Counter = Counter()
    kept = []
    for path in files:
        parts = path.relative_to(src).parts
        if parts[0] == "test" and len(parts) == 3:
            seen[parts[1]] += 1
            if seen[parts[1]] > test_per_class:
                continue
        kept.append(path)
    return kept


def pack(src: Path, dst: Path, test_per_class: int | None = None) -> None:
    files = select(sorted(p for p in src.rglob("*") if p.is_file()), src, test_per_class)
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
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("pack", "unpack"))
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--test-per-class", type=int, help="pack: keep the first N test images per class")
    args = ap.parse_args()
    if args.action == "pack":
        pack(args.src, args.dst, args.test_per_class)
    else:
        unpack(args.src, args.dst)
