"""Tables about a model for the Model tab: architecture, receptive field, rules and its card."""
from __future__ import annotations

import json
import re

from torch import nn

from ..model.receptive_field import model_receptive_field
from ..model.rules import check_rules
from .private import borrowed

ARCH_COLUMNS = ["layer", "type", "output shape", "params"]
RF_COLUMNS = ["layer", "kernel", "stride", "dilation", "jump", "receptive field", "output size"]
RULE_COLUMNS = ["rule", "passed", "measured", "required"]


def md_escape(text: str) -> str:
    """Text shown literally inside Markdown: `*.png` stays `*.png`, `<urlopen ...>` stays visible."""
    return re.sub(r"([\\`*_\[\]<>|~])", r"\\\1", str(text))


TEST_SET_SIZE = 10_000  # CIFAR-10's test set: an accuracy on fewer images is on a sample of it


def data_words(data: str | None, n) -> str:
    """What a model card's `data` names, for a reader: "the JPEG test set (10,000 images)",
    "the clean-pixel check (2,000 images)", "a 500-image sample of the test set". Names a card
    may carry (an image folder's path, torchvision's copy, the bundled sample) become words;
    anything else is shown with its count."""
    count = f"{n:,}" if isinstance(n, int) and not isinstance(n, bool) else "?"
    text = str(data or "").lower().replace("_", "-")
    if "clean-check" in text:
        return f"the clean-pixel check ({count} lossless held-back CIFAR-10 training images)"
    if "bundled sample" in text:
        return (f"the {count} held-out images of the bundled sample" if "test part" in text
                else f"{count} images of the bundled sample")
    if "validation" in text or "minus" in text:
        return f"{count} validation images (held back from training)"
    if "jpeg" in text and "test" in text:
        return f"the JPEG test set ({count} images)"
    if "test" in text and n == TEST_SET_SIZE:
        return f"the {count} test images"
    if "test" in text and isinstance(n, int):
        return f"a {count}-image sample of the test set"
    return f"{count} images ({md_escape(data)})" if data else f"{count} images"


SPLIT_WORDS = {"test": "test accuracy", "validation": "validation accuracy",
               "clean_check": "accuracy"}  # its data words name the check


def card_accuracy(split: str, values: dict) -> str | None:
    """One line of a card's accuracy: "test accuracy 90.32% (90.37% with flip test-time
    augmentation) on the JPEG test set (10,000 images)"; None without a number."""
    plain, tta = values.get("plain"), values.get("tta")
    if not isinstance(plain, (int, float)) or isinstance(plain, bool):
        return None
    with_tta = (f" ({tta:.2%} with flip test-time augmentation)"
                if isinstance(tta, (int, float)) and not isinstance(tta, bool) else "")
    name = SPLIT_WORDS.get(split, f"{md_escape(split).replace('_', ' ')} accuracy")
    return f"{name} {plain:.2%}{with_tta} on {data_words(values.get('data'), values.get('n'))}"


def duration(seconds) -> str:
    """18563.9 -> "5 h 09 min", 185 -> "3 min 05 s", 42.4 -> "42 s"; "?" if not a number."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not seconds >= 0 \
            or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def architecture_name(module_path: str) -> str:
    """"blocks.1.conv3.0" -> "C2.conv3.0", "head.gap" -> "O.gap": names like the architecture."""
    parts = module_path.split(".")
    if parts[:1] == ["blocks"] and len(parts) > 1:
        return ".".join([f"C{int(parts[1]) + 1}"] + parts[2:])
    if parts[:1] == ["head"]:
        return ".".join(["O"] + parts[1:])
    return module_path or "Net"


def architecture_rows(model: nn.Module, max_depth: int = 4) -> list[list]:
    """[layer, type, output shape (C, H, W), params] per module, from torchinfo on a 32x32 input.

    torchinfo hooks every module and runs a forward pass: on a private copy, never on the
    network other visitors are running (`analysis.private`)."""
    from torchinfo import summary

    with borrowed(model) as net:
        names = {id(m): architecture_name(n) for n, m in net.named_modules()}
        stats = summary(net, input_size=(1, 3, 32, 32), depth=max_depth, verbose=0, device="cpu",
                        mode="eval")
    rows = []
    for info in stats.summary_list:
        if info.depth == 0 or info.class_name == "ModuleList":
            continue
        shape = tuple(info.output_size[1:]) if info.output_size else ()
        rows.append([names.get(id(info.module), info.var_name), info.class_name,
                     " x ".join(map(str, shape)), int(info.num_params)])
    return rows


def receptive_field_rows(model: nn.Module) -> list[list]:
    rows, _ = model_receptive_field(model)
    return [[r.name, r.kernel, r.stride, r.dilation, r.jump, r.receptive_field, r.output_size]
            for r in rows]


def rule_rows(model: nn.Module) -> list[list]:
    return [[r.rule, "PASS" if r.passed else "FAIL", str(r.measured), r.required]
            for r in check_rules(model)]


def stages_text(card: dict) -> str | None:
    """One line per training stage of a chained card (a fine-tune of a fine-tune ...)."""
    stages = card.get("stages")
    if not isinstance(stages, list):
        return None
    return "<br>".join(f"{md_escape(s.get('name', '?'))}: {md_escape(s.get('epochs', '?'))} epochs, "
                       f"{duration(s.get('wall_time_s'))} on {md_escape(s.get('device', '?'))}"
                       for s in stages if isinstance(s, dict))


def training_data_words(data) -> str | None:
    if not isinstance(data, dict):
        return None
    n = data.get("n")
    count = f"{n:,}" if isinstance(n, int) and not isinstance(n, bool) else "?"
    return (f"{count} images: {md_escape(data.get('source', '?'))}"
            + (" (demo only: the bundled sample)" if data.get("demo_only") else ""))


def card_markdown(card: dict, source: str, warning: str | None = None,
                  measured: str | None = None) -> str:
    """A readable model card: where the weights came from, accuracy, data, training. Values come
    from a file (an upload's card is anybody's), so each is shown literally. `measured`: the
    app's own evaluation in words ("90.32% on the 10,000 test images"), the Mistakes tab's."""
    lines = [f"**Weights:** `{md_escape(source)}`"]
    if warning:
        lines.append(f"> ⚠️ {md_escape(warning)}")
    if measured:
        lines.append(f"**Accuracy in this app:** {measured} (the Mistakes tab's evaluation)")
    acc = card.get("accuracy") or {}
    recorded = [card_accuracy(str(split), values) for split, values in acc.items() if isinstance(values, dict)]
    recorded = [r for r in recorded if r]
    if recorded:
        lines.append("**Recorded when it was trained:** " + "; ".join(recorded) + ".")
    wall = card.get("wall_time_s")
    facts = [("preset", card.get("preset")), ("recipe", card.get("recipe")),
             ("parameters", f"{card['params']:,}" if isinstance(card.get("params"), int) else None),
             ("receptive field", f"{card['receptive_field']} pixels" if isinstance(card.get("receptive_field"), int)
              else card.get("receptive_field")), ("epochs", card.get("epochs")),
             ("training time", duration(wall) if wall is not None else None),
             ("stages", stages_text(card)), ("hardware", card.get("hardware")),
             ("device" + (" (last stage)" if card.get("stages") else ""), card.get("device")),
             ("torch", card.get("torch")), ("commit", card.get("git_commit")), ("created", card.get("created")),
             ("training data", training_data_words(card.get("train_data")))]
    safe = {"stages", "training data", "training time"}  # built above from escaped parts
    rows = [f"| {k} | {v if k in safe else md_escape(v)} |" for k, v in facts if v not in (None, "")]
    if rows:
        lines += ["| fact | value |\n|---|---|\n" + "\n".join(rows)]
    for key, title in (("train_config", "training settings"), ("aug_config", "augmentation settings")):
        if isinstance(card.get(key), dict):
            lines.append(f"\n<details><summary>{title}</summary>\n\n```json\n"
                         f"{json.dumps(card[key], indent=1, default=str).replace('```', '')}\n```\n</details>")
    return "\n\n".join(lines)


# ---------------------------------------------------------------- the shipped designs side by side

COMPARE_ROWS = ("parameters", "receptive field (px)", "depthwise-separable convs", "dilated convs",
                "test accuracy", "with flip TTA", "clean-pixel check", "epochs", "training time")


def _percent(values: dict | None, key: str) -> str:
    v = (values or {}).get(key)
    return f"{v:.2%}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"


def design_column(model: nn.Module, card: dict) -> list[str]:
    """One shipped network's column of `compare_rows`: measured on the model, read from its card."""
    from ..model.rules import rules_summary

    rules = rules_summary(model)
    accuracy = card.get("accuracy") if isinstance(card.get("accuracy"), dict) else {}
    epochs = card.get("epochs")
    return [f"{rules['params']:,}", str(rules["receptive_field"]), str(rules["depthwise_separable"]),
            str(rules["dilated"]), _percent(accuracy.get("test"), "plain"), _percent(accuracy.get("test"), "tta"),
            _percent(accuracy.get("clean_check"), "plain"),
            str(epochs) if isinstance(epochs, int) and not isinstance(epochs, bool) else "-",
            duration(card.get("wall_time_s"))]


def compare_rows(designs: dict[str, tuple[nn.Module, dict]]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the shipped designs side by side: {name: (model, card)} -> one row per
    property, one column per design, every number from the model itself or its measured card."""
    columns = {name: design_column(model, card) for name, (model, card) in designs.items()}
    rows = [[label, *(col[i] for col in columns.values())] for i, label in enumerate(COMPARE_ROWS)]
    return ["", *map(str, columns)], rows
