"""Any user image (file, bytes, PIL image or array, any mode or size) -> the 32x32 RGB uint8 the net sees.

Conversion rules, in order:
  - the byte size (`max_bytes`) and the pixel count from the header are checked *before*
    decoding: more than `max_pixels` is refused (a decompression bomb is a small file that
    decodes to gigapixels); only PNG, JPEG, WebP, GIF, BMP and TIFF are opened (PIL's other
    plugins, EPS among them, never see a user's bytes);
  - EXIF orientation is applied (phone photos);
  - transparency (RGBA, LA, palette with a transparent index) is composited on white;
  - 16-bit and 32-bit integer images are scaled to 8 bits, float images are read as [0, 1];
  - CMYK, YCbCr, LAB, HSV, palette and bilevel images go through PIL's RGB conversion;
  - the image is centre-cropped to a square (or stretched, or padded with white), then
    downsampled with an area filter (BOX), or upsampled bicubically when smaller than 32.
"""
from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError

SIZE = 32
MAX_PIXELS = 40_000_000  # 40 megapixels: any photo a phone takes, far below a bomb's size
MAX_BYTES = 20 * 2**20   # 20 MB: a phone photo is 3-12 MB; a 27 MB BMP is refused unread
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")  # PIL plugins a user's bytes may reach
SUFFIX = {"PNG": "png", "JPEG": "jpg", "MPO": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp",
          "TIFF": "tiff"}  # (PIL opens a phone's multi-picture JPEG as "MPO")
Fit = Literal["crop", "stretch", "pad"]
WHITE = (255, 255, 255)


class ImageInputError(UserError):
    """The input cannot be used as an image; the message is meant for the user."""


class UnreadableImage(ImageInputError):
    pass


class ImageTooLarge(ImageInputError):
    pass


# ---------------------------------------------------------------- opening

def open_image(source, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> Image.Image:
    """Open a path, bytes, file object, PIL image or array; refuse more than `max_bytes` bytes
    (paths and bytes) or `max_pixels` pixels.

    The returned image is not converted yet (any mode); for files only the header has been read
    when the size check runs.
    """
    if source is None:
        raise UnreadableImage("no image given: upload, paste or drop an image first")
    if isinstance(source, np.ndarray):
        im = array_to_pil(source)
    elif isinstance(source, Image.Image):
        im = source
    else:
        im = _open_file(source, max_pixels, max_bytes)
    check_size(im.size, max_pixels)
    return im


def check_bytes(n: int, max_bytes: int = MAX_BYTES) -> None:
    if n == 0:
        raise UnreadableImage("the file is empty (0 bytes); upload an image file")
    if n > max_bytes:
        raise ImageTooLarge(f"the file is {n / 2**20:.1f} MB; images up to {max_bytes / 2**20:.0f} MB "
                            "are accepted. Resize or compress it and try again.")


def _open_file(source, max_pixels: int, max_bytes: int = MAX_BYTES) -> Image.Image:
    if isinstance(source, (bytes, bytearray)):
        check_bytes(len(source), max_bytes)
    elif isinstance(source, (str, Path)):
        if not Path(source).is_file():
            raise UnreadableImage("no image file was received; upload, paste or drop an image")
        check_bytes(Path(source).stat().st_size, max_bytes)
        source = Path(source).read_bytes()  # at most max_bytes; the marker walk needs them anyway
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else None
    try:
        with warnings.catch_warnings():
            # our own limit is checked below; PIL's global one must not pre-empt a higher one
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data) if data is not None else source, formats=FORMATS)
    except Image.DecompressionBombError as exc:  # PIL's hard stop: twice its MAX_IMAGE_PIXELS
        raise ImageTooLarge(f"the image declares more than {Image.MAX_IMAGE_PIXELS * 2 / 1e6:.0f} "
                            f"megapixels and was not decoded; the limit is {max_pixels / 1e6:.0f} "
                            "megapixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # PIL's message names the server-side file path: keep it out of what the user reads
        raise UnreadableImage(f"this file is not an image that can be read ({_reason(exc)}); "
                              "supported: PNG, JPEG, WebP, GIF, BMP, TIFF") from exc
    try:
        check_size(im.size, max_pixels)  # before the marker walk: a huge header is refused at once
        check_decode_cost(im, data)
    except ImageInputError:
        im.close()
        raise
    return im


def _reason(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, UnidentifiedImageError) or "cannot identify" in text:
        return "unknown or corrupt format"
    return "truncated or corrupt" if "runcated" in text else type(exc).__name__


def check_size(size: tuple[int, int], max_pixels: int = MAX_PIXELS) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise UnreadableImage(f"the image is empty ({w}x{h} pixels)")
    if w * h > max_pixels:
        raise ImageTooLarge(f"the image is {w}x{h} = {w * h / 1e6:.1f} megapixels; the limit is "
                            f"{max_pixels / 1e6:.0f} megapixels. Resize it and try again.")


def array_to_pil(a: np.ndarray) -> Image.Image:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) arrays of uint8, uint16, bool, int or float."""
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise UnreadableImage(f"expected an (H, W), (H, W, 3) or (H, W, 4) array, got shape {a.shape}")
    if a.size == 0:
        raise UnreadableImage(f"the image is empty (shape {a.shape})")
    a = to_uint8(a)
    mode = "L" if a.ndim == 2 else ("RGB" if a.shape[2] == 3 else "RGBA")
    return Image.fromarray(np.ascontiguousarray(a), mode)


def to_uint8(a: np.ndarray) -> np.ndarray:
    """Scale any numeric array to uint8: 16-bit by 1/257, floats from [0, 1], bools to 0/255."""
    if a.dtype == np.uint8:
        return a
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        a = np.nan_to_num(a.astype(np.float64), nan=0.0)
        if a.max(initial=0.0) <= 1.0:
            a = a * 255.0
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.int64)
        if a.max(initial=0) > 255:  # 16-bit data (also 16-bit PNGs that PIL opens as mode "I")
            a = a * 255 // 65535 if a.max() <= 65535 else a * 255 // int(a.max())
        return np.clip(a, 0, 255).astype(np.uint8)
    raise UnreadableImage(f"unsupported pixel type {a.dtype}")


# ---------------------------------------------------------------- mode conversion

def to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB; transparency is composited on white."""
    try:
        im = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block must not make the image unusable
        pass
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        im = Image.fromarray(to_uint8(np.asarray(im)), "L")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


# ---------------------------------------------------------------- resizing

def square(im: Image.Image, fit: Fit = "crop") -> Image.Image:
    w, h = im.size
    if fit == "stretch" or w == h:
        return im
    if fit == "crop":
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        return im.crop((left, top, left + s, top + s))
    if fit == "pad":
        s = max(w, h)
        canvas = Image.new("RGB", (s, s), WHITE)
        canvas.paste(im, ((s - w) // 2, (s - h) // 2))
        return canvas
    raise ValueError(f"fit must be 'crop', 'stretch' or 'pad', got {fit!r}")


def resize(im: Image.Image, size: int = SIZE) -> Image.Image:
    if im.size == (size, size):
        return im
    downsampling = min(im.size) >= size
    return im.resize((size, size), Image.Resampling.BOX if downsampling else Image.Resampling.BICUBIC)


REDUCIBLE = ("RGB", "RGBA", "L", "LA", "I", "F", "CMYK", "YCbCr", "LAB", "RGBa", "La")  # averageable


def shrink(im: Image.Image, keep: int) -> Image.Image:
    """A large decoded image made smaller by an integer factor, its shorter side staying >= `keep`,
    before any mode conversion: the conversions (EXIF turn, 16-bit scaling, palette expansion,
    compositing on white) then copy a small image instead of a 40-megapixel one (a 40 MP RGBA PNG
    peaked at +756 MB without this, a 16-bit one at +815 MB). Averageable modes are box-averaged,
    so the final BOX resize sees the same means; palette, bilevel and 16-bit images (whose values
    cannot be averaged in place) are subsampled to the same size."""
    factor = min(im.size) // keep
    if factor < 2:
        return im
    if im.mode in REDUCIBLE:
        return im.reduce(factor)
    return im.resize((im.width // factor, im.height // factor), Image.Resampling.NEAREST)


def load_rgb32(source, max_pixels: int = MAX_PIXELS, fit: Fit = "crop", size: int = SIZE,
               max_bytes: int = MAX_BYTES) -> np.ndarray:
    """The network's view of any image: (size, size, 3) uint8."""
    im = open_image(source, max_pixels, max_bytes)
    opened_here = not isinstance(source, (np.ndarray, Image.Image))
    try:
        if im.format in ("JPEG", "MPO"):  # decode at a reduced scale straight from the DCT: fast, small
            im.draft("RGB", (size * 4, size * 4))
        im.load()
        rgb = to_rgb(shrink(im, size * 4))
        return np.asarray(resize(square(rgb, fit), size), dtype=np.uint8).copy()
    except ImageInputError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"the image could not be decoded (truncated or corrupt?): {exc}") from exc
    finally:
        if opened_here:
            im.close()


# `load_rgb32` for a picture file, as code a visitor can run with PIL and numpy alone (the lab's
# snippet starts with it, so it reproduces the preview on the visitor's own upload); kept equal to
# the steps above by tests/test_augment.py::test_the_snippets_network_view_is_load_rgb32
NETWORK_VIEW_CODE = '''import numpy as np
from PIL import Image, ImageOps


def network_view(path, size=32):
    """The 32x32 RGB picture the lab and the network see: the centre square, resized."""
    im = Image.open(path)
    if im.format in ("JPEG", "MPO"):  # decode at a reduced scale
        im.draft("RGB", (size * 4, size * 4))
    im.load()
    factor = min(im.size) // (size * 4)
    if factor >= 2:  # shrink large pictures by a whole factor first
        im = im.reduce(factor) if im.mode in ("RGB", "RGBA", "L", "LA") else im.resize(
            (im.width // factor, im.height // factor), Image.Resampling.NEAREST)
    im = ImageOps.exif_transpose(im)
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):  # transparency on white
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im.convert("RGBA"))
    im = im.convert("RGB")
    s = min(im.size)  # the centre square: what the network sees of a wide or tall picture
    left, top = (im.width - s) // 2, (im.height - s) // 2
    im = im.crop((left, top, left + s, top + s))
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BOX if s >= size else Image.Resampling.BICUBIC)
    return np.asarray(im)
'''


def upscale(image: np.ndarray, size: int = 256) -> np.ndarray:
    """Nearest-neighbour enlargement for display by the whole factor that fits in `size` (at
    least 1): every network pixel (or unit of a map) becomes a visible block."""
    factor = max(1, size // max(image.shape[:2]))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


# ---------------------------------------------------------------- decode cost, from the markers

MAX_JPEG_SCANS = 64            # a progressive photo has about 10 scans (libjpeg's default script)
MAX_SCAN_MEGAPIXELS = 500.0    # scans x megapixels: each scan walks every block of the image again


def jpeg_scans(data: bytes, stop_after: int | None = None) -> int:
    """How many scans (SOS segments) a JPEG's stream holds, walking its markers without decoding;
    with `stop_after`, the walk ends once the count exceeds it (20 MB of scans is 350,000).
    A progressive JPEG can repeat a tiny refinement scan thousands of times: 80 bytes each, and
    each makes the decoder walk every block again (a 223 KB file took 14 s of CPU)."""
    n, i, scans = len(data), 2, 0
    while i + 1 < n:
        if data[i] != 0xFF:
            return scans  # corrupt: the decoder will say so
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:  # end of image
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            i += 2
            continue
        if i + 3 >= n:
            break
        end = i + 2 + ((data[i + 2] << 8) | data[i + 3])
        if marker != 0xDA:
            i = end
            continue
        scans += 1
        if stop_after is not None and scans > stop_after:
            return scans
        i = _end_of_entropy_data(data, end)
    return scans


def _end_of_entropy_data(data: bytes, i: int) -> int:
    """The offset of the marker that ends a scan's entropy-coded data (FF followed by anything but
    a stuffed 00, a restart marker or more fill)."""
    n = len(data)
    while True:
        i = data.find(b"\xff", i)
        if i < 0 or i + 1 >= n:
            return n
        following = data[i + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            i += 1
            continue
        return i


def check_decode_cost(im: Image.Image, data: bytes | None) -> None:
    """Refuse, before decoding, an image whose decode work is out of proportion to its pixels."""
    if im.format not in ("JPEG", "MPO") or data is None:
        return  # every other accepted format decodes in time linear in its (capped) pixels
    scans = jpeg_scans(data, stop_after=MAX_JPEG_SCANS)
    megapixels = im.width * im.height / 1e6
    if scans > MAX_JPEG_SCANS or scans * megapixels > MAX_SCAN_MEGAPIXELS:
        many = f"more than {MAX_JPEG_SCANS}" if scans > MAX_JPEG_SCANS else str(scans)
        raise ImageTooLarge(f"this JPEG has {many} progressive scans over {megapixels:.1f} megapixels: "
                            f"too costly to decode (at most {MAX_JPEG_SCANS} scans, and scans x "
                            f"megapixels at most {MAX_SCAN_MEGAPIXELS:.0f}). Save it again as a "
                            "normal JPEG or PNG.")


# ---------------------------------------------------------------- checking without decoding

def check_header(source: str | Path | bytes, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_BYTES) -> str:
    """Byte size, format and pixel count of a file or bytes, from the header alone (nothing is
    decoded, nothing large is allocated); returns the format's usual suffix ("png", "jpg", ...).
    Raises ImageTooLarge or UnreadableImage with a message for the user."""
    im = open_image(source, max_pixels, max_bytes)
    try:
        return SUFFIX[im.format]
    finally:
        im.close()


_DATA_URL = re.compile(r"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,",
                       re.ASCII)


def decode_data_url(url: str, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a `data:[<type>];base64,<data>` URL (or of bare base64 text). The length is
    checked before decoding, so an oversized string costs nothing; the bytes are not yet known
    to be an image (`check_header` says)."""
    if not isinstance(url, str):
        raise UnreadableImage(f"expected a data: URL or base64 text, got {type(url).__name__}")
    encoded = url
    if url.startswith("data:"):
        head = _DATA_URL.match(url)
        if head is None or head.group("b64") is None:
            raise UnreadableImage("only base64 data: URLs are accepted (data:image/png;base64,...)")
        encoded = url[head.end():]
    if len(encoded) > 4 * -(-max_bytes // 3) + 4:  # base64: 4 characters per 3 bytes
        raise ImageTooLarge(f"the image data is about {len(encoded) * 3 / 4 / 2**20:.1f} MB; images up "
                            f"to {max_bytes / 2**20:.0f} MB are accepted")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise UnreadableImage("the data: URL holds no valid base64 data") from None
    check_bytes(len(data), max_bytes)
    return data
