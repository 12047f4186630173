"""cifar_s9 lab: classify, explain, augment, train and inspect a small CIFAR-10 network.

Run `python app.py [--weights PATH] [--data-dir DIR]`, then open http://127.0.0.1:7860
(GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override the address). This file is layout plus thin
adapters; the work happens in `cifar_s9` (images, gradcam, service, jobs, plots, report).
Named API endpoints: /classify, /explain, /augment_preview.
"""
from __future__ import annotations

import argparse
import functools
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path

import gradio as gr
import numpy as np

from cifar_s9 import gradcam, http_limits, images, plots, report, service, uploads
from cifar_s9.augment import AugmentConfig, InvalidAugmentConfig, pipeline_code, validate
from cifar_s9.checkpoint import CheckpointError
from cifar_s9.cli import DEFAULT_WEIGHTS
from cifar_s9.data import CLASSES
from cifar_s9.evaluate import mistakes
from cifar_s9.jobs import Busy, NotOwner, TrainingJobs, TrainRequest
from cifar_s9.model import PRESETS
from cifar_s9.train import TrainConfig
from cifar_s9.ui import experiments as ui_experiments

ROOT = Path(__file__).resolve().parent
PREDICTED = "predicted"


# ================================================================ app state

@dataclass
class AppState:
    store: service.ModelStore
    evals: service.EvaluationCache
    jobs: TrainingJobs
    data_dir: str | None


def configure(weights: str | Path | None = None, data_dir: str | None = None,
              runs_dir: str | Path | None = None) -> AppState:
    """(Re)build the module-level state; the CLI flags and the tests call this."""
    global STATE
    weights = weights or os.environ.get("CIFAR_S9_WEIGHTS") or DEFAULT_WEIGHTS
    data_dir = service.data_dir_from_env(data_dir)
    runs_dir = Path(runs_dir or os.environ.get("CIFAR_S9_APP_RUNS") or ROOT / "runs" / "app")
    STATE = AppState(service.ModelStore(weights), service.EvaluationCache(),
                     TrainingJobs(runs_dir, lambda: service.load_training_data(data_dir)), data_dir)
    ui_experiments.configure(STATE.jobs, data_dir)
    _test_data.cache_clear()
    return STATE


STATE: AppState


@functools.lru_cache(maxsize=1)
def _test_data() -> service.EvalData:
    return service.load_test_data(STATE.data_dir)


def user_errors(fn):
    """Input problems (ValueError and subclasses) reach the user as a readable gr.Error."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, IndexError, CheckpointError) as exc:
            raise gr.Error(str(exc), title="Cannot do that") from exc
    return wrapper


@functools.lru_cache(maxsize=64)
def _rgb32_cached(path: str, mtime: float) -> np.ndarray:
    return images.load_rgb32(path)


def to_rgb32(image) -> np.ndarray:
    """Gradio gives a file path (type="filepath"); anything else goes straight to images."""
    if isinstance(image, (str, Path)) and Path(image).is_file():
        return _rgb32_cached(str(image), Path(image).stat().st_mtime)
    return images.load_rgb32(image)


# ================================================================ Classify

def banner() -> str:
    active = STATE.store.current
    if active.warning:
        return f"⚠️ **{active.warning}**"
    acc = (active.card.get("accuracy") or {}).get("test", {})
    acc_text = f", test accuracy {acc['plain']:.1%}" if isinstance(acc.get("plain"), float) else ""
    return f"Active model: `{Path(active.source).name}`{acc_text}."


@user_errors
def network_view(image) -> np.ndarray | None:
    if image is None:
        return None
    return images.upscale(to_rgb32(image), 256)


@user_errors
def classify(image, k: int = 3) -> dict[str, float]:
    """Top-k class probabilities for one image of any size and mode."""
    model = STATE.store.current.model
    return service.top_k(service.probabilities(model, to_rgb32(image)), service.whole_number(k, "top-k"))


@user_errors
def explain(image, method: str = gradcam.DEFAULT_METHOD, layer: str = gradcam.DEFAULT_LAYER,
            target: str = PREDICTED, opacity: float = 0.5) -> np.ndarray:
    """Grad-CAM overlay (256x256 RGB) for the predicted class or the chosen `target` class."""
    model = STATE.store.current.model
    rgb = to_rgb32(image)
    heatmap = gradcam.explain(model, rgb, method, layer, service.class_index(target))
    return gradcam.overlay(rgb, heatmap, float(opacity))


@user_errors
def explain_caption(image, method: str, layer: str, target: str) -> str:
    if image is None:
        return ""
    model = STATE.store.current.model
    probs = service.probabilities(model, to_rgb32(image))
    predicted = int(probs.argmax())
    index = service.class_index(target)
    index = predicted if index is None else index
    if method in gradcam.CLASS_AGNOSTIC:
        return f"{method} shows the dominant activation pattern of {layer}; it ignores the class."
    why = "(the prediction)" if index == predicted else f"(*why not {CLASSES[index]}?*)"
    return (f"Evidence for **{CLASSES[index]}** ({probs[index]:.1%}) at `{layer}` {why}. "
            f"Predicted: **{CLASSES[predicted]}** ({probs[predicted]:.1%}).")


# ================================================================ Augmentation lab

AUG_FIELDS = [f.name for f in fields(AugmentConfig)]


def augment_config(*values) -> AugmentConfig:
    """Slider values in AugmentConfig field order -> a validated AugmentConfig."""
    return validate(service.coerce_augment(dict(zip(AUG_FIELDS, values))))


_D = AugmentConfig()


@user_errors
def augment_preview(image, flip_p=_D.flip_p, affine_p=_D.affine_p, shift_limit=_D.shift_limit,
                    scale_limit=_D.scale_limit, rotate_limit=_D.rotate_limit, border_mode=_D.border_mode,
                    dropout_p=_D.dropout_p, holes_min=_D.holes_min, holes_max=_D.holes_max,
                    hole_height_min=_D.hole_height_min, hole_height_max=_D.hole_height_max,
                    hole_width_min=_D.hole_width_min, hole_width_max=_D.hole_width_max, fill=_D.fill,
                    jpeg_p=_D.jpeg_p, jpeg_quality_min=_D.jpeg_quality_min, sharpen_p=_D.sharpen_p,
                    n=11, seed=0) -> list[tuple[np.ndarray, str]]:
    """The original plus n augmented versions, as (image, caption) pairs for a gallery."""
    values = locals()
    cfg = augment_config(*[values[name] for name in AUG_FIELDS])
    grid, _ = service.augment_grid(to_rgb32(image), cfg, n, seed)
    return grid


def augment_details(image, *values_n_seed) -> tuple[str, dict | None, str]:
    """Status line, the sampled parameters and the code snippet; never raises."""
    *values, n, seed = values_n_seed
    try:
        cfg = augment_config(*values)
        if image is None:
            return "Choose a sample image.", None, pipeline_code(cfg)
        _, applied = service.augment_grid(to_rgb32(image), cfg, n, seed)
    except (InvalidAugmentConfig, images.ImageInputError, ValueError) as exc:
        return f"⚠️ **Invalid settings:** {exc}", None, gr.skip()
    return f"✅ Settings valid; showing {len(applied)} draws with seed {int(seed)}.", applied, pipeline_code(cfg)


def reroll(seed: int) -> int:
    try:
        seed = service.whole_number(seed, "seed", 0, service.MAX_SEED)
    except ValueError:
        seed = 0
    return int(np.random.default_rng(seed + 1).integers(0, 2**31 - 1))


def send_to_train(*values):
    try:
        cfg = augment_config(*values)
    except InvalidAugmentConfig as exc:
        raise gr.Error(f"Fix the augmentation settings first: {exc}") from exc
    gr.Info("Augmentation settings sent to the Train tab.")
    return cfg.to_dict(), cfg.to_dict()


def reset_augment():
    return [getattr(AugmentConfig(), name) for name in AUG_FIELDS]


# ================================================================ Train

def train_request(preset: str, epochs: int, lr: float, batch_size: int, subset: int,
                  aug: dict | None) -> TrainRequest:
    """UI values -> a TrainRequest; NaN, infinity, text and fractions are refused here, the ranges
    by `TrainRequest.validated` (an empty subset field means all training images)."""
    batch_size = service.whole_number(batch_size, "batch_size")
    subset = None if subset in (None, "") else service.whole_number(subset, "subset")
    train = TrainConfig(epochs=service.whole_number(epochs, "epochs"), lr=service.number(lr, "lr"),
                        batch_size=batch_size, subset=subset, label_smoothing=0.1,
                        log_every=max(1, (subset or 50_000) // max(1, batch_size) // 10))
    return TrainRequest(preset, train, service.coerce_augment(aug or {}))


def render_progress(snap) -> tuple[str, object]:
    bar_len = 24
    filled = int(round(snap.fraction * bar_len))
    eta = f", ETA {snap.eta_s:.0f} s" if snap.eta_s and not snap.finished else ""
    status = {"running": "⏳", "done": "✅", "stopped": "⏹️", "failed": "❌"}[snap.state]
    lines = [f"{status} **{snap.message}**",
             f"`{'█' * filled}{'░' * (bar_len - filled)}` {snap.fraction:.0%} of "
             f"{snap.total_steps or '?'} steps{eta} · device: **{snap.device or '...'}**"]
    if snap.data_note:
        lines.append(f"\n_{snap.data_note.replace('<', '&lt;')}_")
    fig = plots.training_curves(snap.epochs, snap.steps)
    return "\n\n".join(lines), fig


def _owner(request: gr.Request | None) -> str | None:
    """The visitor's session (Gradio passes the request); a direct call (tests) owns "local"."""
    return "local" if request is None else request.session_hash


def start_training(preset, epochs, lr, batch_size, subset, aug, request: gr.Request = None):
    """Generator: starts the single training slot and streams progress until the run ends."""
    try:
        job = STATE.jobs.start(train_request(preset, epochs, lr, batch_size, subset, aug), _owner(request))
    except Busy as exc:
        gr.Warning(str(exc))
        yield f"🚦 **Busy.** {exc}", gr.skip(), gr.skip(), gr.skip()
        return
    except ValueError as exc:
        raise gr.Error(f"Invalid training settings: {exc}") from exc
    seen = -1
    try:
        while True:
            seen = job.wait(seen, timeout=1.0)
            snap = job.snapshot()
            text, fig = render_progress(snap)
            if snap.finished:
                yield text, fig, snap.weights, gr.update(interactive=snap.weights is not None)
                return
            yield text, fig, None, gr.update(interactive=False)
    except GeneratorExit:  # the browser went away: a run belongs to the page that started it
        job.stop()
        raise


try:  # on Hugging Face ZeroGPU, a GPU is attached only inside functions wrapped like this
    import spaces
    start_training = spaces.GPU(duration=600)(start_training)
except ImportError:
    pass


def stop_training(request: gr.Request = None) -> str:
    try:
        stopped = STATE.jobs.stop(_owner(request))
    except NotOwner as exc:
        return f"🚦 {exc}"
    return "⏹️ Stopping after the current step..." if stopped else "Nothing is running."


@user_errors
def activate_weights(path) -> tuple[str, str]:
    if not path:
        raise ValueError("train a model first: there is no checkpoint to activate yet")
    active = STATE.store.activate(path)
    gr.Info(f"Now serving {Path(active.source).name}")
    return f"✅ Active model is now `{active.source}`.", banner()


# ================================================================ Mistakes

def mistakes_view(true_name: str, predicted_name: str, sort: str, limit: int = 60):
    data = _test_data()
    active = STATE.store.current
    ev = STATE.evals.get(active, data.split)
    found = mistakes(ev, service.class_index(true_name or None), service.class_index(predicted_name or None),
                     "confidence_desc" if sort.startswith("most") else "confidence_asc", int(limit))
    gallery = [(images.upscale(data.split.images[m.index], 96),
                f"{CLASSES[m.true]} → {CLASSES[m.predicted]} ({m.confidence:.0%})") for m in found]
    note = (f"{data.note}\n\n**Accuracy {ev.accuracy:.2%}** on {ev.n:,} images "
            f"({int((ev.predictions != ev.labels).sum()):,} mistakes; showing {len(found)}).")
    if active.warning:
        note = f"⚠️ {active.warning}\n\n" + note
    return (note, gallery, [m.index for m in found], plots.confusion_heatmap(ev.confusion),
            plots.per_class_accuracy(ev.per_class_accuracy))


@user_errors
def mistake_cams(indices: list[int], evt: gr.SelectData, method: str = gradcam.DEFAULT_METHOD):
    index = indices[evt.index]
    data = _test_data()
    active = STATE.store.current
    ev = STATE.evals.get(active, data.split)
    rgb = data.split.images[index]
    pred, true = int(ev.predictions[index]), int(ev.labels[index])
    out = []
    for c in (pred, true):
        out.append(gradcam.overlay(rgb, gradcam.explain(active.model, rgb, method, gradcam.DEFAULT_LAYER, c)))
    caption = (f"Test image #{index}: true **{CLASSES[true]}** ({ev.probabilities[index, true]:.1%}), "
               f"predicted **{CLASSES[pred]}** ({ev.probabilities[index, pred]:.1%}).")
    return out[0], out[1], caption


# ================================================================ Model

def model_tab():
    active = STATE.store.current
    rf_rows = report.receptive_field_rows(active.model)
    history = active.card.get("history") or []
    curves = plots.training_curves(history, title="training curves from the model card") if history else None
    return (report.architecture_rows(active.model), rf_rows, plots.receptive_field_chart(rf_rows),
            report.rule_rows(active.model), report.card_markdown(active.card, active.source, active.warning),
            curves)


# ================================================================ layout

CSS = """
.pixelated img { image-rendering: pixelated !important; }
#input_image img, #aug_image img { image-rendering: pixelated; width: 100%; height: 100%; object-fit: contain; }
#banner { padding: 4px 8px; }
"""


def _aug_controls() -> list:
    d = AugmentConfig()
    s = functools.partial(gr.Slider, interactive=True)
    with gr.Accordion("Flip and affine", open=True):
        with gr.Row():
            flip = s(0, 1, d.flip_p, step=0.05, label="flip_p (horizontal flip probability)")
            affine = s(0, 1, d.affine_p, step=0.05, label="affine_p")
        with gr.Row():
            shift = s(0, 0.5, d.shift_limit, step=0.01, label="shift_limit (fraction of size)")
            scale = s(0, 0.9, d.scale_limit, step=0.01, label="scale_limit")
            rotate = s(0, 180, d.rotate_limit, step=1, label="rotate_limit (degrees)")
            border = gr.Dropdown(["reflect", "constant", "replicate", "wrap"], value=d.border_mode,
                                 label="border_mode")
    with gr.Accordion("Coarse dropout (cutout)", open=True):
        with gr.Row():
            dropout = s(0, 1, d.dropout_p, step=0.05, label="dropout_p", elem_id="dropout_p")
            holes_min = s(1, 16, d.holes_min, step=1, label="holes_min")
            holes_max = s(1, 16, d.holes_max, step=1, label="holes_max")
            fill = s(0, 255, d.fill, step=1, label="fill (grey level)")
        with gr.Row():
            hh_min = s(1, 32, d.hole_height_min, step=1, label="hole_height_min (px)")
            hh_max = s(1, 32, d.hole_height_max, step=1, label="hole_height_max (px)")
            hw_min = s(1, 32, d.hole_width_min, step=1, label="hole_width_min (px)")
            hw_max = s(1, 32, d.hole_width_max, step=1, label="hole_width_max (px)")
    with gr.Accordion("Compression and sharpening", open=False):
        with gr.Row():
            jpeg = s(0, 1, d.jpeg_p, step=0.05, label="jpeg_p")
            jpeg_q = s(1, 100, d.jpeg_quality_min, step=1, label="jpeg_quality_min")
            sharpen = s(0, 1, d.sharpen_p, step=0.05, label="sharpen_p")
    by_name = dict(flip_p=flip, affine_p=affine, shift_limit=shift, scale_limit=scale,
                   rotate_limit=rotate, border_mode=border, dropout_p=dropout, holes_min=holes_min,
                   holes_max=holes_max, hole_height_min=hh_min, hole_height_max=hh_max,
                   hole_width_min=hw_min, hole_width_max=hw_max, fill=fill, jpeg_p=jpeg,
                   jpeg_quality_min=jpeg_q, sharpen_p=sharpen)
    return [by_name[name] for name in AUG_FIELDS]


def build_demo() -> gr.Blocks:
    examples = [str(p) for p in service.example_paths()]
    layers = gradcam.layer_names(STATE.store.current.model)
    class_choices = [PREDICTED, *CLASSES]
    with gr.Blocks(title="cifar_s9 lab") as demo:
        gr.Markdown("# cifar_s9 lab\nA <200k-parameter CIFAR-10 network: classify, explain, augment, "
                    "train and inspect it.")
        banner_md = gr.Markdown(elem_id="banner")
        aug_state = gr.State(AugmentConfig().to_dict())

        # ------------------------------------------------------------ Classify
        with gr.Tab("Classify", id="classify"):
            with gr.Row():
                with gr.Column(scale=1):
                    image_in = uploads.guard_image(gr.Image(
                        type="filepath", image_mode=None, label="Your image (any size)", height=260,
                        sources=["upload", "webcam", "clipboard"], elem_id="input_image"))
                    topk = gr.Slider(1, 10, 3, step=1, label="top-k")
                    gr.Examples(examples=[[p] for p in examples], inputs=[image_in],
                                label="CIFAR-10 test examples", examples_per_page=10)
                with gr.Column(scale=1):
                    view = gr.Image(label="What the network sees (32x32, enlarged)", format="png",
                                    interactive=False, height=260, elem_classes="pixelated")
                    label = gr.Label(label="Prediction", num_top_classes=10)
                with gr.Column(scale=1):
                    cam = gr.Image(label="Grad-CAM", format="png", interactive=False, height=260)
                    cam_caption = gr.Markdown()
                    with gr.Row():
                        method = gr.Dropdown(list(gradcam.METHODS), value=gradcam.DEFAULT_METHOD, label="method")
                        layer = gr.Dropdown(layers, value=gradcam.DEFAULT_LAYER, label="target layer")
                    with gr.Row():
                        target = gr.Dropdown(class_choices, value=PREDICTED, label="target class")
                        opacity = gr.Slider(0, 1, 0.5, step=0.05, label="opacity")
            image_in.change(network_view, [image_in], [view], api_visibility="private")
            image_in.change(classify, [image_in, topk], [label], api_name="classify")
            image_in.change(explain, [image_in, method, layer, target, opacity], [cam], api_name="explain")
            topk.release(classify, [image_in, topk], [label], api_visibility="private")
            cam_inputs = [image_in, method, layer, target, opacity]
            gr.on([method.change, layer.change, target.change, opacity.release], explain, cam_inputs,
                  [cam], api_visibility="private", trigger_mode="always_last")
            gr.on([image_in.change, method.change, layer.change, target.change], explain_caption,
                  [image_in, method, layer, target], [cam_caption], api_visibility="private")

        # ------------------------------------------------------------ Augmentation lab
        with gr.Tab("Augmentation lab", id="augment"):
            with gr.Row():
                with gr.Column(scale=1):
                    aug_image = uploads.guard_image(gr.Image(
                        type="filepath", image_mode=None, label="Sample image", height=200,
                        value=examples[3] if len(examples) > 3 else None, elem_id="aug_image"))
                    gr.Examples(examples=[[p] for p in examples], inputs=[aug_image], label="samples",
                                examples_per_page=10)
                    with gr.Row():
                        n_views = gr.Slider(1, 24, 11, step=1, label="augmented versions")
                        seed = gr.Number(0, precision=0, label="seed", minimum=0)
                    with gr.Row():
                        reroll_btn = gr.Button("🎲 Re-roll")
                        reset_btn = gr.Button("Reset to defaults")
                        send_btn = gr.Button("Use these settings in the Train tab ➜", variant="primary")
                with gr.Column(scale=2):
                    aug_status = gr.Markdown()
                    grid = gr.Gallery(label="original + augmented", columns=6, height="auto",
                                      format="png", object_fit="contain", elem_id="aug_grid",
                                      elem_classes="pixelated")
            controls = _aug_controls()
            with gr.Row():
                applied = gr.JSON(label="parameters sampled for each view")
                code = gr.Code(label="albumentations pipeline (copy me)", language="python")
            aug_inputs = [aug_image, *controls, n_views, seed]
            triggers = [aug_image.change, n_views.change, seed.change, demo.load,
                        *[c.change for c in controls]]
            gr.on(triggers, augment_preview, aug_inputs, [grid], api_name="augment_preview",
                  trigger_mode="always_last")
            gr.on(triggers, augment_details, aug_inputs, [aug_status, applied, code],
                  api_visibility="private", trigger_mode="always_last")
            reroll_btn.click(reroll, [seed], [seed], api_visibility="private")
            reset_btn.click(reset_augment, None, controls, api_visibility="private")

        # ------------------------------------------------------------ Train
        with gr.Tab("Train", id="train"):
            gr.Markdown("Train a fresh network. One run at a time for all users; the default small "
                        "subset finishes in a minute or two on a CPU.")
            with gr.Row():
                preset = gr.Dropdown(sorted(PRESETS), value="default", label="preset")
                epochs = gr.Slider(1, 50, 2, step=1, label="epochs")
                lr = gr.Slider(0.005, 1.0, 0.1, step=0.005, label="max learning rate (OneCycle)")
                batch = gr.Dropdown([32, 64, 128, 256, 512], value=128, label="batch size")
                subset = gr.Number(2000, precision=0, minimum=100, label="training images (subset)")
            train_aug = gr.JSON(AugmentConfig().to_dict(), label="augmentation (send from the lab)")
            with gr.Row():
                start_btn = gr.Button("Start", variant="primary")
                stop_btn = gr.Button("Stop", variant="stop")
            progress = gr.Markdown()
            curves = gr.Plot(label="training curves")
            with gr.Row():
                ckpt = gr.File(label="checkpoint (.safetensors)", interactive=False)
                activate_btn = gr.Button("Make this the app's active model", interactive=False)
            activate_status = gr.Markdown()
            start_btn.click(start_training, [preset, epochs, lr, batch, subset, aug_state],
                            [progress, curves, ckpt, activate_btn], api_visibility="private",
                            concurrency_limit=None)
            stop_btn.click(stop_training, None, [progress], api_visibility="private",
                           concurrency_limit=None)
            activate_btn.click(activate_weights, [ckpt], [activate_status, banner_md],
                               api_visibility="private")
            send_btn.click(send_to_train, controls, [aug_state, train_aug], api_visibility="private")

        ui_experiments.tab(aug_state)  # Experiments: A/B runs (cifar_s9/ui/experiments.py)

        # ------------------------------------------------------------ Mistakes
        with gr.Tab("Mistakes", id="mistakes") as mistakes_tab:
            mistakes_note = gr.Markdown("Open this tab to evaluate the active model on the test set.",
                                        elem_id="mistakes_note")
            with gr.Row():
                true_f = gr.Dropdown(["", *CLASSES], value="", label="true class (any)")
                pred_f = gr.Dropdown(["", *CLASSES], value="", label="predicted class (any)")
                sort = gr.Radio(["most confident first", "least confident first"],
                                value="most confident first", label="sort")
            with gr.Row():
                with gr.Column(scale=3):
                    mistake_gallery = gr.Gallery(label="misclassified (true → predicted (confidence))",
                                                 columns=6, height=420, format="png", allow_preview=False,
                                                 elem_id="mistake_gallery")
                with gr.Column(scale=2):
                    mistake_caption = gr.Markdown("Select an image to see its Grad-CAM.")
                    with gr.Row():
                        cam_pred = gr.Image(label="Grad-CAM: predicted class", format="png", height=200)
                        cam_true = gr.Image(label="Grad-CAM: true class", format="png", height=200)
            indices = gr.State([])
            with gr.Row():
                confusion = gr.Plot(label="confusion matrix", elem_id="confusion")
                per_class = gr.Plot(label="per-class accuracy")
            view_outputs = [mistakes_note, mistake_gallery, indices, confusion, per_class]
            gr.on([mistakes_tab.select, true_f.input, pred_f.input, sort.input], user_errors(mistakes_view),
                  [true_f, pred_f, sort], view_outputs, api_visibility="private")
            mistake_gallery.select(mistake_cams, [indices], [cam_pred, cam_true, mistake_caption],
                                   api_visibility="private")

        # ------------------------------------------------------------ Model
        with gr.Tab("Model", id="model") as model_tab_ui:
            with gr.Row():
                arch = gr.Dataframe(headers=report.ARCH_COLUMNS, label="architecture (torchinfo)",
                                    interactive=False, max_height=420)
                with gr.Column():
                    rules = gr.Dataframe(headers=report.RULE_COLUMNS, label="rules", interactive=False)
                    card = gr.Markdown()
            with gr.Row():
                rf_table = gr.Dataframe(headers=report.RF_COLUMNS, label="receptive field", interactive=False)
                rf_chart = gr.Plot(label="receptive field per layer")
            card_curves = gr.Plot(label="training curves (model card)")
            model_outputs = [arch, rf_table, rf_chart, rules, card, card_curves]
            model_tab_ui.select(model_tab, None, model_outputs, api_visibility="private")

        demo.load(banner, None, [banner_md], api_visibility="private")
    return demo


configure()
demo = build_demo()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help=f"checkpoint to serve (default {DEFAULT_WEIGHTS})")
    parser.add_argument("--data-dir", help="CIFAR-10 image folder (DIR/test/<class>/*) for the "
                                           "Mistakes tab and training; env CIFAR_S9_DATA_DIR")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    args = parser.parse_args(argv)
    configure(args.weights, args.data_dir)
    demo.queue(**QUEUE).launch(**launch_options(share=args.share))


# Safe defaults for a public app: local-only unless GRADIO_SERVER_NAME says otherwise, request
# bodies and uploads capped before they are read (cifar_s9.http_limits), 4 requests at a time,
# 64 queued.
MAX_UPLOAD = http_limits.MAX_UPLOAD_BYTES
QUEUE = dict(default_concurrency_limit=4, max_size=64)


def launch_options(share: bool = False) -> dict:
    return dict(server_name=os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1",
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                share=share, css=CSS, theme=gr.themes.Soft(), **http_limits.launch_kwargs())


if __name__ == "__main__":
    main()
