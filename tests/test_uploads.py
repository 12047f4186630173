"""Image payloads from hostile clients (issue 13): every way an image can arrive is checked for
bytes and pixels before any decode, and only files inside the upload folder are read."""
from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest
from hostile import bmp_of_bytes, data_url, png_bomb, small_png
from waiting import wait_until

from cifar_s9.data import images
from cifar_s9.app import uploads
from cifar_s9.data.images import ImageTooLarge, UnreadableImage
from cifar_s9.app.cleanup import keep_pruned, prune_folder
from cifar_s9.app.uploads import NOT_UPLOADED, ImageLimits, checked_image, confine


@pytest.fixture
def folders(tmp_path):
    """(upload folder, a folder outside it, an image uploaded into the first)."""
    root, outside = tmp_path / "gradio", tmp_path / "server"
    (root / "abc123").mkdir(parents=True)
    outside.mkdir()
    good = root / "abc123" / "cat.png"
    good.write_bytes(small_png())
    return root, outside, good


def check(path=None, url=None, root=None, **limits):
    return checked_image(path, url, [root], root, ImageLimits(**limits))


# ---------------------------------------------------------------- paths

def test_a_file_in_the_upload_folder_is_accepted(folders):
    root, _, good = folders
    assert check(str(good), root=root) == good.resolve()
    assert check(good, root=root) == good.resolve()


def test_paths_outside_the_upload_folder_are_refused_with_one_message(folders):
    root, outside, good = folders
    secret = outside / "secret.png"
    secret.write_bytes(small_png())
    (root / "link.png").symlink_to(secret)                 # a symlink inside pointing out
    (root / "dirlink").symlink_to(outside, target_is_directory=True)
    cases = [str(secret),                                  # plain server path
             str(root / ".." / "server" / "secret.png"),    # traversal
             str(root / "abc123" / ".." / ".." / "server" / "secret.png"),
             str(root / "link.png"), str(root / "dirlink" / "secret.png"),
             str(root / "abc123" / "absent.png"),          # absent: same answer as outside
             str(root), str(root / "abc123"),              # folders
             "weights/default.safetensors",                # relative to the server's cwd
             "/etc/passwd", "", "a\x00b", 42, None, ["x"], {"path": "x"}]
    for path in cases:
        with pytest.raises(UnreadableImage) as info:
            check(path, root=root)
        assert str(info.value) == NOT_UPLOADED, path
        assert str(outside) not in str(info.value)


def test_web_addresses_are_refused(folders):
    root, _, _ = folders
    for value in ("http://169.254.169.254/latest", "https://example.com/a.png", "//evil/x.png"):
        with pytest.raises(UnreadableImage, match="web addresses"):
            check(value, root=root)
        with pytest.raises(UnreadableImage, match="web addresses"):
            check(None, value, root=root)


def test_confine_resolves_symlinked_roots(tmp_path):
    real = tmp_path / "real"
    (real / "h").mkdir(parents=True)
    (real / "h" / "x.png").write_bytes(small_png())
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    assert confine(tmp_path / "alias" / "h" / "x.png", [tmp_path / "alias"]) == (real / "h" / "x.png")


# ---------------------------------------------------------------- sizes, before any decode

def test_a_png_declaring_144_megapixels_is_refused_from_its_header(folders):
    root, _, _ = folders
    bomb = png_bomb()
    assert len(bomb) < 200_000  # about 140 KB on disk, 144 MB once decoded
    (root / "abc123" / "bomb.png").write_bytes(bomb)
    tracemalloc.start()
    try:
        for path, url in ((str(root / "abc123" / "bomb.png"), None), (None, data_url(bomb))):
            with pytest.raises(ImageTooLarge, match="12000x12000 = 144.0 megapixels"):
                check(path, url, root=root)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20  # the base64 text and the file bytes, never the 144 MB of pixels


def test_a_27_mb_bmp_is_refused_unread(folders):
    root, _, _ = folders
    bmp = bmp_of_bytes()
    assert len(bmp) > 27 * 10**6 and images.MAX_BYTES < len(bmp)
    (root / "abc123" / "big.bmp").write_bytes(bmp)
    with pytest.raises(ImageTooLarge, match="images up to 20 MB"):
        check(str(root / "abc123" / "big.bmp"), root=root)
    with pytest.raises(ImageTooLarge, match="images up to 20 MB"):  # refused on the text's length
        check(None, data_url(bmp, "image/bmp"), root=root)


def test_data_urls_and_base64(folders):
    root, _, _ = folders
    stored = check(None, data_url(small_png()), root=root)
    assert stored.is_relative_to(root) and stored.suffix == ".png"
    assert stored.read_bytes() == small_png()  # stored unchanged, never re-encoded
    assert images.load_rgb32(stored).shape == (32, 32, 3)
    assert images.decode_data_url(data_url(small_png())[len("data:image/png;base64,"):]) == small_png()
    bad = [("data:image/png,rawtext", "only base64"), ("data:image/png;base64,@@@@", "no valid base64"),
           ("data:;base64,", "empty"), (data_url(b"GIF87a not really"), "not an image"),
           (data_url(b"%!PS-Adobe-3.0 EPSF-3.0\n"), "not an image")]  # EPS: PIL would run Ghostscript
    for url, message in bad:
        with pytest.raises(UnreadableImage, match=message):
            check(None, url, root=root)


def test_every_limit_is_a_parameter(folders):
    root, _, good = folders
    with pytest.raises(ImageTooLarge, match="megapixels"):
        check(str(good), root=root, max_pixels=100)
    with pytest.raises(ImageTooLarge, match="MB"):
        check(str(good), root=root, max_bytes=10)
    with pytest.raises(ImageTooLarge):
        check(None, data_url(small_png()), root=root, max_bytes=10)


# ---------------------------------------------------------------- the Gradio hook

@pytest.fixture
def guarded(tmp_path, monkeypatch):
    import gradio as gr
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    component = uploads.guard_image(gr.Image(type="filepath", image_mode=None))
    return component, tmp_path / "gradio"


def test_the_hook_refuses_with_a_gradio_error_and_accepts_uploads(guarded, tmp_path):
    import gradio as gr
    from gradio.data_classes import ImageData

    component, root = guarded
    assert component.GRADIO_CACHE == str(root)
    (root / "h").mkdir(parents=True)
    (root / "h" / "ok.png").write_bytes(small_png())
    (root / "h" / "bomb.png").write_bytes(png_bomb())
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(small_png())
    assert component.preprocess(ImageData(path=str(root / "h" / "ok.png"))) == str(root / "h" / "ok.png")
    from_url = component.preprocess(ImageData(url=data_url(small_png())))
    assert from_url.startswith(str(root)) and open(from_url, "rb").read() == small_png()
    assert component.preprocess(None) is None
    for payload, message in [(ImageData(path=str(outside)), "uploaded to this app"),
                             (ImageData(path=str(root / ".." / "elsewhere.png")), "uploaded to this app"),
                             (ImageData(path=str(root / "h" / "bomb.png")), "144.0 megapixels"),
                             (ImageData(url=data_url(png_bomb())), "144.0 megapixels"),
                             (ImageData(url="https://example.com/cat.png"), "web addresses"),
                             (ImageData(), "uploaded to this app")]:
        with pytest.raises(gr.Error, match=message) as info:
            component.preprocess(payload)
        assert str(tmp_path) not in str(info.value)


def test_refuse_downloads_covers_every_component_of_a_blocks(tmp_path, monkeypatch):
    import asyncio
    import gradio as gr
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))
    local = tmp_path / "model.safetensors"
    local.write_bytes(b"x")
    with gr.Blocks() as demo:
        upload = gr.File(type="filepath")
        gallery = gr.Gallery()
    assert uploads.refuse_downloads(demo) is demo
    for component in (upload, gallery):
        with pytest.raises(gr.Error, match="web addresses"):
            asyncio.run(component.async_move_resource_to_block_cache("https://example.com/big.bin"))
        with pytest.raises(gr.Error, match="web addresses"):
            component.move_resource_to_block_cache("http://example.com/x")
        moved = asyncio.run(component.async_move_resource_to_block_cache(str(local)))
        assert Path(moved).read_bytes() == b"x"  # local files still move as before
    assert uploads.refuse_downloads(upload) is upload  # idempotent


def test_the_hook_refuses_to_download(guarded):
    import asyncio
    import gradio as gr

    component, _ = guarded
    with pytest.raises(gr.Error, match="web addresses"):
        asyncio.run(component.async_move_resource_to_block_cache("https://example.com/a.png"))
    with pytest.raises(gr.Error, match="web addresses"):
        component.move_resource_to_block_cache("http://10.0.0.1/a.png")


# ---------------------------------------------------------------- pruning

def _entry(root, name, size, age, now):
    d = root / name
    d.mkdir(parents=True)
    (d / "f.bin").write_bytes(b"x" * size)
    for p in (d / "f.bin", d):
        os.utime(p, (now - age, now - age))
    return d


def test_prune_by_age_then_by_total_size_oldest_first(tmp_path):
    now = 1_000_000.0
    old = _entry(tmp_path, "old", 10, 7200, now)
    a = _entry(tmp_path, "a", 400, 300, now)
    b = _entry(tmp_path, "b", 400, 200, now)
    c = _entry(tmp_path, "c", 400, 100, now)
    removed = prune_folder(tmp_path, max_age_s=3600, max_total_bytes=900, now=now)
    assert removed == [old, a]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "c"]
    assert prune_folder(tmp_path, 3600, 900, now=now) == [] and b.exists() and c.exists()


def test_prune_keeps_files_in_use_and_never_follows_symlinks(tmp_path):
    now = 1_000_000.0
    folder, precious = tmp_path / "uploads", tmp_path / "weights"
    folder.mkdir()
    precious.mkdir()
    (precious / "default.safetensors").write_bytes(b"w" * 1000)
    example = _entry(folder, "example", 100, 99_999, now)
    _entry(folder, "stale", 100, 99_999, now)
    (folder / "link").symlink_to(precious, target_is_directory=True)
    os.utime(folder / "link", (now - 99_999, now - 99_999), follow_symlinks=False)
    removed = prune_folder(folder, 60, 10**9, keep=[example / "f.bin"], now=now)
    assert sorted(p.name for p in removed) == ["link", "stale"]
    assert example.exists() and (precious / "default.safetensors").stat().st_size == 1000


def test_keep_pruned_runs_in_the_background(tmp_path):
    _entry(tmp_path, "stale", 10, 10_000, __import__("time").time())
    stop = keep_pruned(tmp_path, every_s=0.05, max_age_s=60, max_total_bytes=10**9)
    try:  # a pruner thread on a busy machine may run late, never not at all (issue 23: was 2 s)
        wait_until(lambda: not (tmp_path / "stale").exists(), "the background pruner never removed it")
    finally:
        stop.set()


def test_prune_touches_only_entries_that_match(tmp_path):
    now = 1_000_000.0
    run = _entry(tmp_path, "20260101-000000-000000-default", 10, 99_999, now)
    other = _entry(tmp_path, "notes", 10, 99_999, now)
    removed = prune_folder(tmp_path, 60, 0, now=now, match=lambda e: e.name[:8].isdigit())
    assert removed == [run] and other.exists()


def test_files_in_use_lists_gradio_examples(tmp_path, monkeypatch):
    import gradio as gr
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))
    example = tmp_path / "example.png"
    example.write_bytes(small_png())
    with gr.Blocks() as demo:
        image = gr.Image(type="filepath")
        gr.Examples([[str(example)]], [image])
    kept = uploads.files_in_use(demo)
    assert kept and all(str(p).startswith(str(tmp_path / "cache")) for p in kept)
