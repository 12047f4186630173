"""Tables about a model for the Model tab: architecture, receptive field, rules and its card."""
from __future__ import annotations

import json

from torch import nn

from ..model.receptive_field import model_receptive_field
from .private import borrowed
from ..model.rules import check_rules

ARCH_COLUMNS = ["layer", "type", "output shape", "params"]
RF_COLUMNS = ["layer", "kernel", "stride", "dilation", "jump", "receptive field", "output size"]
RULE_COLUMNS = ["rule", "passed", "measured", "required"]


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
    return "<br>".join(f"{s.get('name', '?')}: {s.get('epochs', '?')} epochs, {s.get('wall_time_s', '?')} s "
                       f"on {s.get('device', '?')}" for s in stages if isinstance(s, dict))


def card_markdown(card: dict, source: str, warning: str | None = None) -> str:
    """A readable model card: where the weights came from, accuracy, data, training."""
    lines = [f"**Weights:** `{source}`"]
    if warning:
        lines.append(f"> ⚠️ {warning}")
    acc = card.get("accuracy") or {}
    for split, values in acc.items():
        if isinstance(values, dict):
            parts = [f"{k} {v:.2%}" for k, v in values.items() if k in ("plain", "tta")
                     and isinstance(v, (int, float))]
            where = f" on {values.get('n', '?')} images of {values.get('data', '?')}"
            lines.append(f"**{split} accuracy:** {', '.join(parts) or '-'}{where}")
    facts = [("preset", card.get("preset")), ("recipe", card.get("recipe")),
             ("parameters", f"{card['params']:,}" if "params" in card else None),
             ("receptive field", card.get("receptive_field")), ("epochs", card.get("epochs")),
             ("wall time", f"{card['wall_time_s']} s" if "wall_time_s" in card else None),
             ("stages", stages_text(card)), ("hardware", card.get("hardware")),
             ("device" + (" (last stage)" if card.get("stages") else ""), card.get("device")),
             ("torch", card.get("torch")), ("commit", card.get("git_commit")), ("created", card.get("created"))]
    data = card.get("train_data")
    if isinstance(data, dict):
        facts.append(("training data", f"{data.get('n', '?')} images of {data.get('source', '?')}"
                      + (" (demo only)" if data.get("demo_only") else "")))
    rows = [f"| {k} | {v} |" for k, v in facts if v not in (None, "")]
    if rows:
        lines += ["| fact | value |\n|---|---|\n" + "\n".join(rows)]
    for key in ("train_config", "aug_config"):
        if isinstance(card.get(key), dict):
            lines.append(f"\n<details><summary>{key}</summary>\n\n```json\n"
                         f"{json.dumps(card[key], indent=1)}\n```\n</details>")
    return "\n\n".join(lines)
