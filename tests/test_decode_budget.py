"""Decode cost bounded before decoding (issue 25, points 1 and 2): progressive JPEGs whose scans
repeat, and small files that expand to gigabytes in a mode the shrink used to skip."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from cifar_s9.data import images

ROOT = Path(__file__).resolve().parent.parent


def progressive_jpeg(size: int = 256) -> bytes:
    # smooth content: its last refinement scan is a few dozen bytes, as in the reported attack
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    pixels = np.stack([ramp[None, :].repeat(size, 0), ramp[:, None].repeat(size, 1),
                       np.full((size, size), 90.0, np.float32)], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", progressive=True, quality=90)
    return buf.getvalue()


def repeat_last_scan(jpeg: bytes, times: int) -> bytes:
    """The attack: the last scan (SOS header + its entropy data) copied `times` more times."""
    start = jpeg.rindex(b"\xff\xda")
    end = jpeg.rindex(b"\xff\xd9")
    return jpeg[:end] + jpeg[start:end] * times + jpeg[end:]


def test_scans_are_counted_from_the_markers():
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buf, "JPEG")
    assert images.jpeg_scans(buf.getvalue()) == 1  # baseline: one scan
    progressive = progressive_jpeg()
    normal = images.jpeg_scans(progressive)
    assert 2 <= normal <= 20  # libjpeg's progressive script
    assert images.jpeg_scans(repeat_last_scan(progressive, 1000)) == normal + 1000


def test_a_scan_repeated_jpeg_is_refused_before_decoding(monkeypatch):
    bomb = repeat_last_scan(progressive_jpeg(), 1000)
    assert len(bomb) < 2 * 2**20  # small enough for any upload cap

    def no_decode(self, *a, **k):
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    with pytest.raises(images.ImageTooLarge, match="progressive scans"):
        images.load_rgb32(bomb)
    with pytest.raises(images.ImageTooLarge, match="progressive scans"):
        images.check_header(bomb)


def test_a_large_progressive_photo_with_a_normal_script_is_accepted():
    # 6000x6000 with ~10 scans: 360 scan-megapixels, under the budget of 500
    big = Image.new("RGB", (6000, 6000), (120, 80, 40))
    buf = io.BytesIO()
    big.save(buf, "JPEG", progressive=True, quality=50)
    assert images.load_rgb32(buf.getvalue()).shape == (32, 32, 3)


def test_the_same_bomb_as_a_file_is_refused(tmp_path):
    path = tmp_path / "bomb.jpg"
    path.write_bytes(repeat_last_scan(progressive_jpeg(), 200))
    with pytest.raises(images.ImageTooLarge, match="progressive scans"):
        images.load_rgb32(path)


# ---------------------------------------------------------------- memory of expanding modes

MEASURE = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    from cifar_s9.data import images

    def peak_kb():  # this process's own high-water mark (ru_maxrss would count the forking parent's)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    data = open(sys.argv[1], "rb").read()
    before = peak_kb()
    out = images.load_rgb32(data)
    print(json.dumps({{"mb": (peak_kb() - before) / 1024, "shape": list(out.shape)}}))
""")


def expanding_png(kind: str, path: Path) -> Path:
    h = w = 6300  # 39.7 megapixels, under the 40 MP cap; a file of 50-90 KB
    if kind == "png16":
        Image.fromarray((np.arange(w, dtype=np.uint16)[None, :] * 10).repeat(h, 0)).save(path, "PNG")
    else:  # a palette image with a transparent index
        im = Image.new("P", (w, h), 3)
        im.putpalette([i % 256 for i in range(768)])
        im.save(path, "PNG", transparency=0)
    return path


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads Linux's VmHWM")
@pytest.mark.parametrize("kind", ["png16", "palette"])
def test_small_files_that_expand_stay_within_a_few_hundred_mb(kind, tmp_path):
    """Measured in a fresh process that only decodes (peak RSS growth): the decode buffer itself
    (40 MP x 1-2 bytes) and little else. Before the fix: +795 MB for both."""
    path = expanding_png(kind, tmp_path / f"{kind}.png")
    assert path.stat().st_size < 200_000
    result = subprocess.run([sys.executable, "-c", MEASURE.format(root=str(ROOT)), str(path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["shape"] == [32, 32, 3]
    assert measured["mb"] < 300, measured
