"""Every sentence the app's tabs show that depends on a result: pure functions of the result,
tested without a browser. Markdown is escaped where user-chosen or data-derived text goes in."""
from __future__ import annotations

import numpy as np

from ..analysis.report import TEST_SET_SIZE, card_accuracy, data_words, duration, md_escape  # noqa: F401
from ..data.cifar import CLASSES

LOW_CONFIDENCE = 0.5  # below this top-1 probability the Classify tab flags the answer
# At a block whose output goes straight into global average pooling and one linear layer, the
# class score is linear in the activations: GradCAM's channel weights (mean gradient), XGradCAM's
# (activation-weighted gradient) and HiResCAM's (gradient times activation, summed) all reduce
# to the linear layer's row for the class, so their maps coincide up to scale.
LINEAR_HEAD_LAYERS = {"C4"}
SAME_AT_LINEAR_HEAD = {"GradCAM", "XGradCAM", "HiResCAM"}


def test_images(n: int, full: bool) -> str:
    """Which test images an accuracy counts: "the 10,000 test images" or "a 500-image sample of
    the test set" (the app's evaluation: the full set, or the bundled sample without a dataset)."""
    return f"the {n:,} test images" if full else f"a {n:,}-image sample of the test set"


def banner(source: str, card: dict, warning: str | None, shipped: bool,
           measured: tuple[float, int, bool] | None = None) -> str:
    """One line above the tabs: which model this visitor's session uses, and its accuracy:
    `measured` (accuracy, images, full test set?) is the app's own evaluation of it, the one the
    Mistakes tab shows; without it, what the model card recorded, and on which images."""
    if warning:
        return f"⚠️ **{md_escape(warning)}**"
    words = accuracy_words(card, measured)
    acc_text = f": {words}" if words else ""
    whose = "shipped model" if shipped else "your model (this browser session only)"
    return f"Active model: **{whose}** `{md_escape(source)}`{acc_text}."


def accuracy_words(card: dict, measured: tuple[float, int, bool] | None = None) -> str | None:
    """The accuracy the app shows for a model, wherever it names one: its own evaluation
    (`measured`: accuracy, images, full test set?) once there is one, else the test accuracy its
    card recorded, and on which images; None when neither is known."""
    if measured is not None:
        accuracy, n, full = measured
        return f"{accuracy:.2%} on {test_images(n, full)}"
    recorded = card.get("accuracy") if isinstance(card.get("accuracy"), dict) else {}
    test = recorded.get("test")
    line = card_accuracy("test", test) if isinstance(test, dict) else None
    return f"{line} (its model card)" if line else None


def design_title(role: str, source: str, card: dict, warning: str | None = None,
                 measured: tuple[float, int, bool] | None = None) -> str:
    """The head of one column of Classify's comparison: whose model, its name and its accuracy
    in the banner's words ("**Reference design**: reference design (seed.safetensors)", then
    "83.39% on the 10,000 test images")."""
    head = f"**{role}**: {md_escape(source)}"
    words = f"⚠️ {md_escape(warning)}" if warning else accuracy_words(card, measured)
    return f"{head}\n\n{words}" if words else head


def compare_note(method: str, layer: str, target: int | None, class_agnostic: bool, partner: str,
                 mine_is_reference: bool) -> str:
    """The line above Classify's two columns: what is compared, and why with `partner` (the
    reference design, or the shipped model when the session already uses the reference)."""
    why = (f"Your session already uses the reference design, so it is set beside the **{partner}**. "
           if mine_is_reference else "")
    whose = "the predicted class" if target is None else f"class **{CLASSES[target]}**"
    cam = f"{method} at `{layer}`" + ("" if class_agnostic else f" for {whose}")
    return f"{why}The same 32x32 image through both networks; Grad-CAM: {cam} (the settings above)."


NETWORK_SIDE = 32    # pixels per side of what the network sees
HEAVY_CROP = 0.4     # warn when the centre square drops more than this share of the picture
                     # (a 16:9 photo loses 44%; 4:3 and 3:2 photos, 25% and 33%, are usual)


def crop_cut(width: int, height: int) -> float:
    """The share of a width x height picture outside its centre square (what the crop drops)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"an image size must be positive, got {width}x{height}")
    return 1 - min(width, height) / max(width, height)


def input_warnings(width: int, height: int) -> list[str]:
    """What the 32x32 centre crop does to a picture of this size, when it matters."""
    notes = []
    if min(width, height) < NETWORK_SIDE:
        notes.append(f"⚠️ **Tiny image** ({width}x{height}): enlarged to {NETWORK_SIDE}x{NETWORK_SIDE}, so "
                     f"the network sees a blur of {width * height:,} pixels, not a CIFAR-10 photo.")
    cut = crop_cut(width, height)
    if cut > HEAVY_CROP:
        side = min(width, height)
        where = "left and right" if width > height else "top and bottom"
        notes.append(f"⚠️ **Heavy crop**: the network sees only the centre {side}x{side} square of "
                     f"this {width}x{height} image; {cut:.0%} of it ({where}) is cut away.")
    return notes


def ood_line(top_probability: float, calibration) -> str:
    """The out-of-distribution flag, with what it is and how often it cries wolf; without a
    calibration for this model (`calibration` None) the plain low-confidence rule."""
    p = top_probability
    if calibration is None:
        if p < LOW_CONFIDENCE:
            return (f"⚠️ **Low confidence** ({p:.0%}): the image may show none of the ten classes, or "
                    "too little survives at 32x32 (this model has no calibrated out-of-distribution check).")
        return ""
    rate = (f"the {calibration.threshold:.0%} threshold flags {calibration.false_alarm_test:.1%} of the "
            f"{calibration.n_test:,} CIFAR-10 test images")
    if calibration.flags(p):
        return (f"⚠️ **Possibly not a CIFAR-10 picture**: the top-class probability, {p:.0%}, is under "
                f"the threshold ({rate} too: false alarms happen).")
    return (f"<small>Out-of-distribution check: top-class probability {p:.0%}, above the threshold "
            f"({rate}; noise often passes, so this is a hint, not a guarantee).</small>")


def classify_note(probs: np.ndarray, size: tuple[int, int] | None = None, calibration=None) -> str:
    """What the prediction means: ten classes only, a 32x32 view; a tiny or heavily cropped
    upload and an unusual-looking input (the calibrated check) flagged."""
    top = int(np.argmax(probs))
    note = ("The network knows only the ten CIFAR-10 classes and sees a 32x32 centre crop of your "
            "image (shown above the prediction), so any photo gets one of those ten labels.")
    parts = [*input_warnings(*size)] if size else []
    parts.append(ood_line(float(probs[top]), calibration))
    return "\n\n".join([p for p in parts if p] + [note])


def explain_caption(probs: np.ndarray, method: str, layer: str, target: int | None,
                    class_agnostic: bool) -> str:
    predicted = int(probs.argmax())
    index = predicted if target is None else target
    if class_agnostic:
        text = f"{method} shows the dominant activation pattern of {layer}; it ignores the class."
    else:
        why = "(the prediction)" if index == predicted else f"(*why not {CLASSES[index]}?*)"
        text = (f"Evidence for **{CLASSES[index]}** ({probs[index]:.1%}) at `{layer}` {why}. "
                f"Predicted: **{CLASSES[predicted]}** ({probs[predicted]:.1%}).")
    if layer in LINEAR_HEAD_LAYERS and method in SAME_AT_LINEAR_HEAD:
        text += (f"\n\nAt `{layer}` GradCAM, XGradCAM and HiResCAM give the same map: the layer feeds "
                 "global average pooling and one linear layer, so all three weight each channel by "
                 "that layer's weight for the class. Pick an earlier layer to see them differ.")
    return text


def gallery_caption(true: int, predicted: int, confidence: float) -> str:
    """Short enough for a 96-pixel thumbnail: "cat→dog 97%"."""
    return f"{CLASSES[true]}→{CLASSES[predicted]} {confidence:.0%}"


def mistakes_note(data_note: str, accuracy: float, n: int, mistakes_total: int, matching: int,
                  shown: int, filters: str = "", warning: str | None = None, full: bool = True,
                  model: str | None = None) -> str:
    where = f" {filters}" if filters else ""
    if matching == 0 and filters:
        found = f"**No mistakes{where}.** Clear a filter to see others."
    else:
        found = f"{matching:,} mistakes{where}; showing {shown}."
    whose = f" (`{md_escape(model)}`)" if model else ""
    text = (f"{data_note}\n\n**Accuracy {accuracy:.2%}** on {test_images(n, full)}{whose} "
            f"({mistakes_total:,} mistakes in all). {found}")
    return f"⚠️ {md_escape(warning)}\n\n{text}" if warning else text


def filter_words(true_name: str | None, predicted_name: str | None) -> str:
    parts = []
    if true_name:
        parts.append(f"of true class {true_name}")
    if predicted_name:
        parts.append(f"predicted as {predicted_name}")
    return " ".join(parts)


def training_note(available: int, used: int, asked: int | None, scored: int, test_total: int,
                  demo_only: bool) -> str:
    """The images a run actually trains and scores on (issue 26.4): "Training on 2,000 of the
    46,000 CIFAR-10 training images ...", and without a dataset what the bundled sample cut."""
    cut = (f" You asked for {asked:,}; only {available:,} are on this server."
           if asked is not None and asked > used else "")
    scoring = (f"Test accuracy after each epoch: on {scored:,} of the {test_total:,} test images."
               if scored < test_total else f"Test accuracy after each epoch: on all {scored:,} test images.")
    if demo_only:
        return (f"CIFAR-10 is not available on this server: this run trains on {used:,} images of the "
                f"bundled sample and scores on {scored:,} others.{cut} It only demonstrates the "
                "training loop; its accuracy means little.")
    whole = (f"all {used:,} CIFAR-10 training images" if used >= available
             else f"{used:,} of the {available:,} CIFAR-10 training images (a random subset)")
    return f"Training on {whole}.{cut} {scoring}"


def slot_status(busy: bool, mine: bool, message: str | None = None, kind: str = "run",
                left_s: float | None = None, limit: str | None = None) -> str:
    """The one shared training slot, as every visitor sees it; `kind` is what holds it: a
    training "run" or an A/B "experiment" (Experiments tab); `left_s`: seconds before the slot's
    time limit stops it; `limit`: the policy in words."""
    rule = f" ({limit})" if limit else ""
    if not busy:
        return f"🟢 **Training slot free.** One run at a time is shared by all visitors of this app{rule}."
    work = "A/B experiment (Experiments tab)" if kind == "experiment" else "run"
    owner = f"**your** {work}" if mine else f"{'an' if kind == 'experiment' else 'a'} {work} started by **another visitor**"
    what = f" ({md_escape(message)})" if message else ""
    tail = "" if mine else " Yours can start when it ends (this line updates by itself); only its owner can stop it."
    left = f" It is stopped in at most {minutes(left_s)}, the slot's limit." if left_s is not None else ""
    return f"🟠 **Training slot busy** with {owner}{what}.{left}{tail}"


def minutes(seconds: float) -> str:
    """A wait in words: "45 s" under two minutes, else whole minutes rounded up."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{-(-seconds // 60):.0f} min"


def busy_text(noun: str, left_s: float | None, eta_s: float | None) -> str:
    """Why a visitor's start was refused while another visitor's job holds the slot, and what
    they can do: wait (how long at most), since only the owner can stop it."""
    parts = [f"The training slot is busy: another visitor's {noun} is already in progress (one run "
             "or experiment at a time for all visitors of this app)."]
    if eta_s:
        parts.append(f"By its own estimate it ends in about {minutes(eta_s)}.")
    if left_s is not None:
        parts.append(f"The slot's time limit ends it in at most {minutes(left_s)}.")
    parts.append("Wait for it: the slot line updates by itself and says when the slot is free; "
                 "then start again. Only its owner can stop it.")
    return " ".join(parts)


def progress_text(state: str, message: str, fraction: float, total_steps: int, eta_s: float | None,
                  device: str, data_note: str = "", bar_len: int = 24) -> str:
    filled = int(round(fraction * bar_len))
    eta = f", ETA {eta_s:.0f} s" if eta_s and state == "running" else ""
    status = {"running": "⏳", "done": "✅", "stopped": "⏹️", "failed": "❌"}.get(state, "")
    lines = [f"{status} **{md_escape(message)}**",
             f"`{'█' * filled}{'░' * (bar_len - filled)}` {fraction:.0%} of "
             f"{total_steps or '?'} steps{eta} · device: **{device or '...'}**"]
    if data_note:
        lines.append(f"_{md_escape(data_note)}_")
    return "\n\n".join(lines)
