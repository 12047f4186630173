import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from cifar_s9.data import images
from cifar_s9.data.images import ImageTooLarge, UnreadableImage, load_rgb32


def _save(im: Image.Image, path, fmt="PNG", **kw):
    im.save(path, fmt, **kw)
    return path


def test_rgba_is_composited_on_white(tmp_path):
    im = Image.new("RGBA", (64, 64), (255, 0, 0, 0))  # fully transparent red
    out = load_rgb32(_save(im, tmp_path / "a.png"))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert (out == 255).all()


def test_half_transparent_blends_with_white():
    out = load_rgb32(Image.new("RGBA", (32, 32), (0, 0, 0, 128)))
    assert np.allclose(out, 127, atol=1)


def test_la_and_palette_transparency(tmp_path):
    assert (load_rgb32(Image.new("LA", (40, 40), (0, 0))) == 255).all()
    p = Image.new("P", (40, 40), 0)
    p.putpalette([0, 0, 0] * 256)
    p.info["transparency"] = 0
    assert (load_rgb32(_save(p, tmp_path / "p.png")) == 255).all()


def test_grayscale_and_bilevel_become_equal_channels():
    out = load_rgb32(Image.new("L", (50, 50), 77))
    assert (out == 77).all()
    out = load_rgb32(Image.new("1", (50, 50), 1))
    assert (out == 255).all()


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    a = np.full((40, 40), 32896, dtype=np.uint16)  # half of 65535 (128 * 257)
    path = tmp_path / "16.png"
    Image.fromarray(a).save(path)  # stored as a 16-bit greyscale PNG
    assert Image.open(path).mode in ("I;16", "I")
    assert (load_rgb32(path) == 128).all()


def test_arrays_of_any_dtype():
    assert (load_rgb32(np.full((10, 10), 65535, np.uint16)) == 255).all()
    assert (load_rgb32(np.full((10, 10, 3), 0.5, np.float32)) == 128).all()
    assert (load_rgb32(np.ones((10, 10, 1), bool)) == 255).all()
    with pytest.raises(UnreadableImage):
        load_rgb32(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(UnreadableImage):
        load_rgb32(np.zeros((0, 10, 3), np.uint8))


def test_cmyk_converts_to_rgb(tmp_path):
    cyan = Image.new("CMYK", (40, 40), (255, 0, 0, 0))
    out = load_rgb32(_save(cyan, tmp_path / "c.jpg", "JPEG", quality=100))
    assert np.allclose(out[16, 16], (0, 255, 255), atol=8)


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (64, 32), (255, 0, 0))
    im.paste((0, 0, 255), (32, 0, 64, 32))  # left red, right blue
    exif = Image.Exif()
    exif[274] = 6  # "rotate 90 clockwise to display"
    path = tmp_path / "rot.jpg"
    im.save(path, "JPEG", exif=exif, quality=95)
    out = load_rgb32(path, fit="stretch")
    assert out[2, 16, 0] > 200 and out[29, 16, 2] > 200  # red on top, blue at the bottom


def test_fit_modes_and_area_downsampling():
    wide = Image.new("RGB", (100, 50), (0, 0, 0))
    assert load_rgb32(wide, fit="crop").shape == (32, 32, 3)
    padded = load_rgb32(wide, fit="pad")
    assert (padded[0] == 255).all() and (padded[16] == 0).all()
    checker = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)  # 1-pixel checkerboard
    out = load_rgb32(checker)
    assert np.abs(out.astype(int) - 127).max() <= 1  # area average, no aliasing
    assert load_rgb32(Image.new("RGB", (8, 8), (10, 20, 30))).shape == (32, 32, 3)  # upsampling


def test_size_is_refused_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    Image.new("RGB", (1200, 1000), (1, 2, 3)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[:200])  # header intact, pixel data gone: decoding would fail
    with pytest.raises(ImageTooLarge, match="1.2 megapixels"):
        load_rgb32(path, max_pixels=1_000_000)
    with pytest.raises(UnreadableImage):
        load_rgb32(path, max_pixels=2_000_000)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height but carries almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def test_decompression_bomb_is_refused():
    bomb = _png_header(100_000, 100_000)  # 10 gigapixels claimed in 33 bytes
    with pytest.raises(ImageTooLarge):
        load_rgb32(bomb)
    with pytest.raises(ImageTooLarge, match="limit is 40 megapixels"):
        load_rgb32(_png_header(8000, 6000))  # 48 MP: under PIL's own limit, over ours


@pytest.mark.parametrize("source", [None, b"not an image at all", "/no/such/file.png"])
def test_unreadable_inputs_raise_value_errors(source):
    with pytest.raises(UnreadableImage) as info:
        load_rgb32(source)
    assert isinstance(info.value, ValueError)


def test_text_file_is_unreadable(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(UnreadableImage, match="not an image"):
        load_rgb32(path)


def test_upscale_is_nearest():
    img = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)
    big = images.upscale(img, 256)
    assert big.shape == (256, 256, 3)
    assert (big[::8, ::8] == img).all() and (big[7::8, 7::8] == img).all()


def test_bytes_and_file_objects(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (40, 40), (9, 8, 7)).save(buf, "PNG")
    assert (load_rgb32(buf.getvalue()) == (9, 8, 7)).all()
    buf.seek(0)
    assert (load_rgb32(buf) == (9, 8, 7)).all()


# ---------------------------------------------------------------- large images are shrunk before conversion

def _gradient(w: int, h: int, mode: str) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w]
    r, g = (x * 255 // w).astype(np.uint8), (y * 255 // h).astype(np.uint8)
    b = ((x + y) * 255 // (w + h)).astype(np.uint8)
    if mode == "RGBA":
        return Image.fromarray(np.dstack([r, g, b, (255 - r // 2).astype(np.uint8)]), "RGBA")
    if mode == "L":
        return Image.fromarray(r, "L")
    return Image.fromarray(np.dstack([r, g, b]), "RGB")


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
@pytest.mark.parametrize("orientation", [1, 6])
def test_shrinking_first_gives_the_same_view(tmp_path, monkeypatch, mode, orientation):
    im = _gradient(1500, 1000, mode)
    exif = Image.Exif()
    exif[274] = orientation  # 6: the camera was turned; the view must be turned back
    path = tmp_path / "big.png"
    im.save(path, exif=exif.tobytes())
    shrunk = load_rgb32(path)
    monkeypatch.setattr(images, "shrink", lambda im, keep: im)
    full = load_rgb32(path)
    assert np.abs(shrunk.astype(int) - full.astype(int)).max() <= 2
    if orientation == 6 and mode == "RGB":  # turned: red now grows downwards, green leftwards
        assert full[-1, 16, 0] > full[0, 16, 0] and full[16, 0, 1] > full[16, -1, 1]


def test_shrink_keeps_small_images_and_subsamples_palette_and_16_bit_ones():
    small = Image.new("RGB", (200, 150))
    assert images.shrink(small, 128) is small
    palette = Image.new("P", (2000, 2000))
    palette.info["transparency"] = 0
    reduced = images.shrink(palette, 128)
    assert reduced.mode == "P" and reduced.size == (133, 133)  # indices are picked, never averaged
    assert images.shrink(Image.new("I;16", (2000, 1000)), 128).size == (285, 142)
    assert images.shrink(Image.new("RGBA", (2000, 1000)), 128).size == (286, 143)  # factor 7, shorter side >= 128
