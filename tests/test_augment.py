"""Augmentation config, validation, seeded previews and the copyable pipeline snippet."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from waiting import HANG_S, SLOW_TEST_S

from cifar_s9.data.augment import (NO_AUGMENT, AugmentConfig, InvalidAugmentConfig, build_pipeline,
                              normalize_uint8, pipeline_code, pipeline_json, preview, validate)
from cifar_s9.data.cifar import MEAN, STD
from cifar_s9.train.recipes import LONG_AUG, RECIPES, ROBUST_AUG

PACKAGE = Path(__file__).resolve().parent.parent / "cifar_s9"
ALWAYS = AugmentConfig(flip_p=0.5, affine_p=1.0, dropout_p=1.0)


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)


# ---------------------------------------------------------------- preview

def test_same_seed_same_images(image):
    a = preview(image, ALWAYS, n=4, seed=3)
    b = preview(image, ALWAYS, n=4, seed=3)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert [x.applied for x in a] == [y.applied for y in b]


def test_different_seed_different_images(image):
    a = preview(image, ALWAYS, n=4, seed=3)
    b = preview(image, ALWAYS, n=4, seed=4)
    assert not all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    # and the samples within one grid differ from each other
    assert not np.array_equal(a[0].image, a[1].image)


def test_preview_shapes_and_dtypes(image):
    samples = preview(image, AugmentConfig(), n=5, seed=0)
    assert len(samples) == 5
    for s in samples:
        assert s.image.shape == (32, 32, 3)
        assert s.image.dtype == np.uint8
        assert isinstance(s.applied, dict)


def test_preview_does_not_modify_the_input(image):
    before = image.copy()
    preview(image, ALWAYS, n=2)
    assert np.array_equal(image, before)


def test_no_augment_is_the_identity(image):
    (sample,) = preview(image, NO_AUGMENT, n=1)
    assert np.array_equal(sample.image, image)
    assert sample.applied == {}


def test_flip_alone_mirrors_the_image(image):
    (sample,) = preview(image, NO_AUGMENT.with_changes(flip_p=1.0), n=1)
    assert np.array_equal(sample.image, image[:, ::-1])
    assert set(sample.applied) == {"HorizontalFlip"}


def test_cutout_paints_one_8x8_hole_in_the_fill_colour():
    black = np.zeros((32, 32, 3), np.uint8)
    for s in preview(black, NO_AUGMENT.with_changes(dropout_p=1.0, fill=128), n=3, seed=1):
        filled = (s.image == 128).all(-1)
        assert filled.sum() == 8 * 8
        ys, xs = np.nonzero(filled)
        assert (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == (8, 8)
        (hole,) = s.applied["CoarseDropout"]["holes"]
        x1, y1, x2, y2 = hole
        assert (x1, y1) == (xs.min(), ys.min()) and (x2 - x1, y2 - y1) == (8, 8)


def test_applied_reports_the_sampled_parameters(image):
    cfg = NO_AUGMENT.with_changes(affine_p=1.0, rotate_limit=10.0, dropout_p=1.0)
    samples = preview(image, cfg, n=4, seed=0)
    angles = []
    for s in samples:
        assert set(s.applied) == {"Affine", "CoarseDropout"}
        angle = s.applied["Affine"]["rotate"]
        assert -10.0 <= angle <= 10.0
        angles.append(angle)
        assert s.applied["Affine"]["fill"] == 128
    assert len(set(angles)) > 1  # sampled per image, not fixed


def test_applied_is_json_serialisable(image):
    import json
    for s in preview(image, ROBUST_AUG.with_changes(jpeg_p=1.0, sharpen_p=1.0), n=2):
        json.dumps(s.applied)
        assert {"ImageCompression", "Sharpen"} <= set(s.applied)


@pytest.mark.parametrize("bad", [np.zeros((32, 32), np.uint8), np.zeros((32, 32, 3), np.float32),
                                 np.zeros((32, 32, 4), np.uint8)])
def test_preview_rejects_non_rgb_uint8(bad):
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        preview(bad, AugmentConfig())


# ---------------------------------------------------------------- validate

@pytest.mark.parametrize("cfg", [AugmentConfig(), NO_AUGMENT, ROBUST_AUG] + [r.aug for r in RECIPES.values()])
def test_validate_accepts_the_shipped_configs(cfg):
    assert validate(cfg) is cfg


@pytest.mark.parametrize("changes, words", [
    ({"holes_min": 3, "holes_max": 2}, ["holes_min", "holes_max", "holes_min=3"]),
    ({"hole_height_min": 10, "hole_height_max": 6}, ["hole_height_min <= hole_height_max"]),
    ({"hole_width_max": 33}, ["hole_width_max", "<= 32"]),
    ({"hole_height_min": 40, "hole_height_max": 40}, ["hole_height_max", "<= 32"]),
    ({"holes_min": 0}, ["1 <= holes_min"]),
    ({"holes_min": -1}, ["holes_min=-1"]),
    ({"shift_limit": -0.1}, ["shift_limit", "[0, 0.5]", "-0.1"]),
    ({"rotate_limit": float("nan")}, ["rotate_limit must be a number", "nan"]),
    ({"scale_limit": float("inf")}, ["scale_limit must be a number"]),
    ({"flip_p": 1.5}, ["flip_p must be a probability in [0, 1]", "1.5"]),
    ({"dropout_p": -0.01}, ["dropout_p", "probability"]),
    ({"fill": 300}, ["fill", "[0, 255]"]),
    ({"jpeg_quality_min": 0}, ["jpeg_quality_min", "[1, 100]"]),
    ({"border_mode": "mirror"}, ["border_mode", "'mirror'"]),
    ({"holes_max": 2.5}, ["holes_max must be a whole number"]),
    ({"holes_max": 17}, ["holes_max <= 16"]),  # the same bound as its slider
    ({"border_fill": 256}, ["border_fill", "[0, 255]"]),
])
def test_validate_rejects_impossible_values_readably(changes, words):
    with pytest.raises(InvalidAugmentConfig) as info:
        validate(AugmentConfig(**changes))
    message = str(info.value)
    for w in words:
        assert w in message
    assert "\n" not in message and "Traceback" not in message


def test_validate_reports_every_problem_at_once():
    with pytest.raises(InvalidAugmentConfig) as info:
        validate(AugmentConfig(flip_p=2.0, holes_min=5, holes_max=1, fill=-1))
    message = str(info.value)
    assert "flip_p" in message and "holes_min" in message and "fill" in message


def test_builders_refuse_invalid_configs():
    for build in (build_pipeline, pipeline_code, lambda c: preview(np.zeros((32, 32, 3), np.uint8), c)):
        with pytest.raises(InvalidAugmentConfig):
            build(AugmentConfig(affine_p=2.0))


def test_invalid_augment_config_is_a_value_error():
    assert issubclass(InvalidAugmentConfig, ValueError)  # the CLI turns ValueErrors into exit 2


def test_config_dict_round_trip_ignores_unknown_keys():
    cfg = AugmentConfig(flip_p=0.1, holes_max=3)
    assert AugmentConfig.from_dict({**cfg.to_dict(), "from_the_future": 1}) == cfg


# ---------------------------------------------------------------- pipelines

def test_training_pipeline_outputs_normalised_float(image):
    out = build_pipeline(NO_AUGMENT, seed=0)(image=image)["image"]
    assert out.dtype == np.float32 and out.shape == (32, 32, 3)
    np.testing.assert_allclose(out, normalize_uint8(image[None])[0].transpose(1, 2, 0), atol=1e-5)


def test_normalize_uint8_by_hand():
    x = np.zeros((2, 32, 32, 3), np.uint8)
    x[1] = 255
    out = normalize_uint8(x)
    assert out.shape == (2, 3, 32, 32) and out.dtype == np.float32
    assert out[0, 0, 0, 0] == pytest.approx((0 - 0.4914) / 0.2470, abs=1e-5)
    assert out[1, 0, 0, 0] == pytest.approx((1 - 0.4914) / 0.2470, abs=1e-5)  # 2.0591
    assert out[1, 2, 5, 5] == pytest.approx((1 - MEAN[2]) / STD[2], abs=1e-5)


def run_snippet(cfg: AugmentConfig):
    namespace: dict = {}
    exec(compile(pipeline_code(cfg), "<pipeline_code>", "exec"), namespace)
    return namespace["transform"]


@pytest.mark.parametrize("cfg", [AugmentConfig(), ROBUST_AUG, LONG_AUG,
                                 AugmentConfig(flip_p=0.25, shift_limit=0.05, rotate_limit=7.5,
                                               border_mode="constant", holes_max=3, fill=0)])
def test_pipeline_code_execs_into_the_same_pipeline(cfg, image):
    import albumentations as A  # the one place outside cifar_s9.data.augment that may

    snippet = run_snippet(cfg)
    built = build_pipeline(cfg)
    assert isinstance(snippet, A.Compose)
    assert [type(t).__name__ for t in snippet.transforms] == [type(t).__name__ for t in built.transforms]
    assert [t.p for t in snippet.transforms] == pytest.approx([t.p for t in built.transforms])
    # same seed, same image, same output: the snippet really is this pipeline
    snippet.set_random_seed(11)
    built.set_random_seed(11)
    for _ in range(3):
        np.testing.assert_array_equal(snippet(image=image)["image"], built(image=image)["image"])


@pytest.mark.parametrize("seed", range(6))
def test_the_snippet_sets_every_parameter_the_pipeline_has(seed):
    """`pipeline_code` is written beside `spatial_transforms`: a knob wired into one and not the
    other (a copyable snippet that silently differs) shows here, for random settings of every knob."""
    import albumentations as A
    from synthetic import random_config

    cfg = random_config(np.random.default_rng(seed))
    # the snippet prints 1.86 where the pipeline computes 1 + 0.86 = 1.8599999999999999
    assert rounded(A.to_dict(run_snippet(cfg))) == rounded(A.to_dict(build_pipeline(cfg))), cfg


def rounded(value):
    """`value` with every float rounded to 9 decimals, through dicts, lists and tuples."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(rounded(v) for v in value)
    return value


JSON_CASES = [AugmentConfig(), ROBUST_AUG, LONG_AUG,
              AugmentConfig(flip_p=0.25, border_mode="wrap", holes_max=3, color_p=0.4, jpeg_p=0.3, fill=0)]


@pytest.mark.parametrize("cfg", JSON_CASES)
def test_the_pipeline_json_loads_back_into_the_same_pipeline(cfg, image, tmp_path):
    """The lab's download and a run bundle's file: albumentations' own form, which A.load (and
    A.from_dict) rebuild into this pipeline: the same transforms with the same parameters, and
    the same outputs for one seed."""
    import json

    import albumentations as A  # the one place outside cifar_s9.data.augment that may

    path = tmp_path / "augmentation_pipeline.json"
    path.write_text(pipeline_json(cfg))
    loaded, from_dict = A.load(str(path)), A.from_dict(json.loads(path.read_text()))
    built = build_pipeline(cfg)
    for rebuilt in (loaded, from_dict):
        assert isinstance(rebuilt, A.Compose)
        assert [type(t).__name__ for t in rebuilt.transforms] == [type(t).__name__ for t in built.transforms]
        assert A.to_dict(rebuilt) == A.to_dict(built)  # every parameter of every transform
        rebuilt.set_random_seed(5)
    built.set_random_seed(5)
    for _ in range(4):
        want = built(image=image)["image"]
        np.testing.assert_array_equal(loaded(image=image)["image"], want)
        np.testing.assert_array_equal(from_dict(image=image)["image"], want)
    names = [t["__class_fullname__"] for t in json.loads(path.read_text())["transform"]["transforms"]]
    assert names[-1] == "Normalize" and ("ColorJitter" in names) == (cfg.color_p > 0)


def test_the_pipeline_json_refuses_an_invalid_config():
    with pytest.raises(InvalidAugmentConfig, match="holes_min"):
        pipeline_json(AugmentConfig(holes_min=4, holes_max=2))


@pytest.mark.parametrize("mode", ["reflect", "constant", "replicate", "wrap"])
def test_pipeline_code_names_the_border_mode_the_pipeline_uses(mode):
    cfg = AugmentConfig(border_mode=mode)
    affine = lambda pipeline: next(t for t in pipeline.transforms if type(t).__name__ == "Affine")  # noqa: E731
    assert affine(run_snippet(cfg)).border_mode == affine(build_pipeline(cfg)).border_mode


def test_pipeline_code_reflects_the_numbers():
    code = pipeline_code(AugmentConfig(flip_p=0.25, holes_max=3, hole_width_max=12))
    assert "HorizontalFlip(p=0.25)" in code
    assert "num_holes_range=(1, 3)" in code
    assert "hole_width_range=(8, 12)" in code


def test_only_augment_imports_albumentations():
    pattern = re.compile(r"^\s*(import\s+albumentations|from\s+albumentations[\s.])", re.M)
    sources = sorted(PACKAGE.glob("**/*.py"))
    app = PACKAGE.parent / "app.py"
    if app.exists():
        sources.append(app)
    assert PACKAGE / "data" / "augment.py" in sources
    offenders = [str(p.relative_to(PACKAGE.parent)) for p in sources
                 if p.name != "augment.py" and pattern.search(p.read_text())]
    assert offenders == []
    assert pattern.search((PACKAGE / "data" / "augment.py").read_text())  # the grep does find imports


@pytest.mark.timeout(SLOW_TEST_S)  # a fresh interpreter imports torch: slow on a busy machine
def test_importing_the_augmentations_makes_no_network_call():
    import os
    import subprocess
    import sys

    # any URL opened during the import ends the interpreter with status 3
    probe = ("import os, urllib.request\n"
             "urllib.request.OpenerDirector.open = lambda *a, **k: os._exit(3)\n"
             "from cifar_s9.data.augment import AugmentConfig, build_pipeline\n"
             "build_pipeline(AugmentConfig())\n")  # albumentations is imported on first use
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    result = subprocess.run([sys.executable, "-c", probe], env=env, cwd=Path(__file__).parent.parent,
                            capture_output=True, text=True, timeout=HANG_S)
    assert result.returncode == 0, result.stderr


def test_the_dropout_fill_and_the_border_fill_are_separate(image):
    cfg = NO_AUGMENT.with_changes(affine_p=1.0, dropout_p=1.0, fill=0, border_fill=200,
                                  border_mode="constant")
    (s,) = preview(image, cfg, n=1, seed=0)
    assert s.applied["Affine"]["fill"] == 200 and s.applied["CoarseDropout"]["fill"] == 0
    assert "fill=200" in pipeline_code(cfg) and "fill=0" in pipeline_code(cfg)


def test_the_seeded_snippet_reproduces_the_preview(image):
    cfg = AugmentConfig(dropout_p=1.0, affine_p=1.0, rotate_limit=30)
    namespace: dict = {}
    exec(compile(pipeline_code(cfg, seed=5), "<pipeline_code>", "exec"), namespace)
    assert "seed=5)" in pipeline_code(cfg, seed=5)
    for s in preview(image, cfg, n=4, seed=5):
        out = namespace["transform"](image=image)["image"]
        np.testing.assert_allclose(out, normalize_uint8(s.image[None])[0].transpose(1, 2, 0), atol=1e-5)


def test_sampled_parameters_hide_albumentations_internals(image):
    (s,) = preview(image, NO_AUGMENT.with_changes(affine_p=1.0), n=1)
    assert not {"matrix", "bbox_matrix"} & set(s.applied["Affine"])


@pytest.mark.timeout(SLOW_TEST_S)
def test_importing_the_config_does_not_import_albumentations():
    import subprocess
    import sys
    probe = ("import sys, cifar_s9.data.augment, cifar_s9.analysis.gradcam\n"
             "heavy = {'albumentations', 'pytorch_grad_cam', 'cv2'} & set(sys.modules)\n"
             "sys.exit(3 if heavy else 0)\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).parent.parent,
                            capture_output=True, text=True, timeout=HANG_S)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("size, mode, fmt", [((300, 200), "RGB", "PNG"), ((640, 480), "RGB", "JPEG"),
                                             ((20, 50), "RGBA", "PNG"), ((1200, 900), "L", "PNG"),
                                             ((4000, 300), "RGB", "JPEG"), ((32, 32), "P", "PNG")])
def test_the_snippets_network_view_is_load_rgb32(tmp_path, size, mode, fmt):
    from PIL import Image

    from cifar_s9.data.images import NETWORK_VIEW_CODE, load_rgb32
    rng = np.random.default_rng(size[0])
    pixels = rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8)
    im = Image.fromarray(pixels, "RGBA").convert(mode)
    path = tmp_path / f"picture.{fmt.lower()}"
    im.save(path, fmt)
    namespace: dict = {}
    exec(compile(NETWORK_VIEW_CODE, "<network_view>", "exec"), namespace)
    np.testing.assert_array_equal(namespace["network_view"](str(path)), load_rgb32(str(path)))


def test_the_lab_snippet_reproduces_the_grid_on_the_visitors_own_picture(tmp_path):
    from PIL import Image

    from cifar_s9.app.lab import augment_grid, snippet
    from cifar_s9.data.images import load_rgb32
    path = tmp_path / "panorama.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 1200, 3), dtype=np.uint8)).save(path)
    cfg = AugmentConfig(dropout_p=1.0, affine_p=1.0, rotate_limit=30)
    code = snippet(cfg, seed=7, n=4).replace("your_image.jpg", str(path))
    namespace: dict = {}
    exec(compile(code, "<lab snippet>", "exec"), namespace)
    grid, _ = augment_grid(load_rgb32(str(path)), cfg, 4, 7, display=32)  # what the lab shows
    assert len(namespace["views"]) == 4
    for view, (shown, _) in zip(namespace["views"], grid[1:]):
        np.testing.assert_allclose(view, normalize_uint8(shown[None])[0].transpose(1, 2, 0), atol=1e-5)
