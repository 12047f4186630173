"""A strong distillation teacher: Keller Jordan's airbench94 network and recipe, ported to run
on a CPU (fp32) or a GPU, trained on our own splits.

The teacher only teaches. It breaks the Session 9 rules on purpose (2M parameters, max-pooling,
no depthwise or dilated convs), the app never offers it, and what the shipped student keeps of
it is a bank of its logits (`cifar_s9.teacher.bank`). Its tricks, each from airbench94
(github.com/KellerJordan/cifar10-airbench, legacy/airbench94.py, 94.01% mean over 1,000 runs on
clean CIFAR-10 in 9.9 epochs): a frozen 2x2 patch-whitening first conv, identity-initialised
convs, BatchNorm without scale, a large decoupled learning rate with Nesterov SGD, label
smoothing 0.2, lookahead weight averaging, alternating flips and 2-pixel translations, and
flip + translate test-time augmentation.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..analysis.evaluate import flip_shift_logits
from ..data.cifar import MEAN, STD, Split
from ..data.transforms import shifted_crops
from ..train.whiten import patch_covariance, whitening_filters
from ..errors import UserError


@dataclass(frozen=True)
class TeacherConfig:
    widths: tuple[int, int, int] = (64, 256, 256)  # airbench94; (128, 384, 384) is airbench95's
    epochs: float = 9.9             # airbench94's length; longer runs gain when the data is smaller
    batch_size: int = 1024
    lr: float = 11.5                # per 1024 examples, decoupled from momentum (airbench's form)
    momentum: float = 0.85
    weight_decay: float = 0.0153    # per 1024 examples, decoupled from the learning rate
    bias_scaler: float = 64.0       # BatchNorm biases learn this much faster
    label_smoothing: float = 0.2
    whiten_bias_epochs: int = 3     # the whitening conv's bias trains this long, then freezes
    translate: int = 2              # random shifts up to this many pixels (reflect padding)
    batchnorm_momentum: float = 0.6
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TeacherConfig":
        return cls(**{**d, "widths": tuple(d["widths"])})


# ---------------------------------------------------------------- network
class _BatchNorm(nn.BatchNorm2d):
    def __init__(self, channels: int, momentum: float):
        super().__init__(channels, eps=1e-12, momentum=1 - momentum)
        self.weight.requires_grad = False  # scale fixed at 1: only the bias learns


class _Conv(nn.Conv2d):
    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, padding="same", bias=False):
        super().__init__(c_in, c_out, kernel_size, padding=padding, bias=bias)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias is not None:
            self.bias.data.zero_()
        torch.nn.init.dirac_(self.weight.data[:self.weight.size(1)])  # starts as an identity


class _ConvGroup(nn.Module):
    def __init__(self, c_in: int, c_out: int, bn_momentum: float):
        super().__init__()
        self.conv1, self.pool = _Conv(c_in, c_out), nn.MaxPool2d(2)
        self.norm1, self.conv2 = _BatchNorm(c_out, bn_momentum), _Conv(c_out, c_out)
        self.norm2, self.activ = _BatchNorm(c_out, bn_momentum), nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        return self.activ(self.norm2(self.conv2(x)))


class TeacherNet(nn.Module):
    """whiten (2x2) -> 3 x [conv, pool, BN, GELU, conv, BN, GELU] -> max-pool -> linear / 9."""

    def __init__(self, widths=(64, 256, 256), bn_momentum: float = 0.6):
        super().__init__()
        self.whiten = _Conv(3, 24, kernel_size=2, padding=0, bias=True)
        self.whiten.weight.requires_grad = False
        w1, w2, w3 = widths
        self.groups = nn.Sequential(_ConvGroup(24, w1, bn_momentum), _ConvGroup(w1, w2, bn_momentum),
                                    _ConvGroup(w2, w3, bn_momentum))
        self.head = nn.Linear(w3, 10, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 3, 32, 32) normalised
        x = self.groups(F.gelu(self.whiten(x)))
        x = F.adaptive_max_pool2d(x, 1).flatten(1)  # (B, w3); airbench's MaxPool2d(3) on 3x3
        return self.head(x) / 9.0

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the first conv to the principal directions of the 2x2 patches' second moment, each
        scaled to unit variance, in +/- pairs (so GELU keeps both signs): train/whiten.py's
        filters, on all 12 directions."""
        out_channels, c, k, _ = self.whiten.weight.shape
        cov = patch_covariance(images.float(), k, centred=False)
        filters = whitening_filters(cov, out_channels, eps)
        self.whiten.weight.data[:] = filters.reshape(out_channels, c, k, k).to(self.whiten.weight.dtype)


# ---------------------------------------------------------------- data on tensors
def to_normalized(images: np.ndarray) -> torch.Tensor:
    """(N, 32, 32, 3) uint8 -> (N, 3, 32, 32) float32, normalised with the CIFAR-10 statistics."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


# ---------------------------------------------------------------- inference
@torch.no_grad()
def teacher_logits(model: nn.Module, x: torch.Tensor, tta: bool = True, batch_size: int = 1000) -> torch.Tensor:
    """Logits for normalised images; with `tta`, airbench's six views (mirror x {none, +1, -1
    pixel diagonal shifts}, the unshifted pair weighted one half)."""
    model.eval()
    out = []
    for chunk in x.split(batch_size):
        out.append(flip_shift_logits(model, chunk) if tta else model(chunk))
    return torch.cat(out)


# ---------------------------------------------------------------- training
def _lr_factor(step: int, total: int) -> float:
    """airbench94: linear from 0.2 to 1 over the first 23% of steps, then down to 0.07."""
    warmup = int(total * 0.23)
    if step < warmup:
        return 0.2 + 0.8 * step / warmup
    return 1.0 - 0.93 * (step - warmup) / max(1, total - warmup)


class _Lookahead:
    def __init__(self, model: nn.Module):
        self.ema = {k: v.clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        for ema, current in zip(self.ema.values(), model.state_dict().values()):
            if current.is_floating_point():
                ema.lerp_(current, 1 - decay)
                current.copy_(ema)


def train_teacher(cfg: TeacherConfig, train: Split, val: Split | None = None,
                  log: Callable[[dict], None] = print, device: str = "cpu",
                  checkpoint: Path | None = None, resume: Path | None = None) -> tuple[TeacherNet, list[dict]]:
    """Train one teacher; returns it (on the CPU) and the per-epoch history (validation accuracy
    if `val`). With `checkpoint`, the state is saved after every epoch; `resume` continues from
    such a file bit-for-bit on the CPU (every random draw comes from one seeded generator whose
    state is saved). The caller owns process-wide settings such as the CPU thread count."""
    from ..records.checkpoint import load_resume, save_resume

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)  # draws on the CPU: the same run on any device
    images, labels = to_normalized(train.images).to(device), torch.from_numpy(train.labels).to(device)
    val_x = to_normalized(val.images).to(device) if val is not None else None
    model = TeacherNet(cfg.widths, cfg.batchnorm_momentum).to(device, memory_format=torch.channels_last)
    model.init_whitening(images[:5000])

    steps_per_epoch = len(images) // cfg.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch size {cfg.batch_size} exceeds the {len(images)} training images")
    total = math.ceil(steps_per_epoch * cfg.epochs)
    kilostep = 1024 * (1 + 1 / (1 - cfg.momentum))
    lr, wd = cfg.lr / kilostep, cfg.weight_decay * cfg.batch_size / kilostep
    norm_biases = [p for n, p in model.named_parameters() if "norm" in n and p.requires_grad]
    others = [p for n, p in model.named_parameters() if "norm" not in n and p.requires_grad]
    optimizer = torch.optim.SGD([
        {"params": norm_biases, "lr": lr * cfg.bias_scaler, "weight_decay": wd / (lr * cfg.bias_scaler)},
        {"params": others, "lr": lr, "weight_decay": wd / lr}], momentum=cfg.momentum, nesterov=True)
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    lookahead = _Lookahead(model)
    alpha = 0.95 ** 5 * (torch.arange(total + 1) / total) ** 3

    flipped = torch.where((torch.rand(len(images), generator=gen) < 0.5).view(-1, 1, 1, 1).to(device),
                          images.flip(-1), images)
    padded = F.pad(flipped, (cfg.translate,) * 4, "reflect")
    history, step, first_epoch = [], 0, 0
    if resume is not None:
        state = load_resume(resume)
        if TeacherConfig.from_dict(state["config"]) != cfg:
            raise UserError(f"{Path(resume).name} was written by a teacher with another config")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        lookahead.ema = {k: v.to(device) for k, v in state["lookahead"].items()}
        gen.set_state(state["generator"])
        step, first_epoch, history = state["step"], state["epoch"], list(state["history"])
    for epoch in range(first_epoch, math.ceil(cfg.epochs)):
        model.whiten.bias.requires_grad = epoch < cfg.whiten_bias_epochs
        model.train()
        dy, dx = (torch.randint(-cfg.translate, cfg.translate + 1, (len(images),), generator=gen).to(device)
                  for _ in range(2))
        epoch_x = shifted_crops(padded, dy, dx, cfg.translate)
        if epoch % 2 == 1:  # every other epoch sees every image mirrored: more diverse than coin flips
            epoch_x = epoch_x.flip(-1)
        order = torch.randperm(len(images), generator=gen).to(device)
        loss_sum, correct, seen, t0 = 0.0, 0, 0, time.perf_counter()
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x = epoch_x[idx].contiguous(memory_format=torch.channels_last)
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
                out = model(x).float()
            loss = F.cross_entropy(out, labels[idx], label_smoothing=cfg.label_smoothing, reduction="sum")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for g, base in zip(optimizer.param_groups, base_lrs):
                g["lr"] = base * _lr_factor(step, total)
            optimizer.step()
            step += 1
            loss_sum += loss.item()
            correct += int((out.argmax(1) == labels[idx]).sum())
            seen += len(idx)
            if step % 5 == 0:
                lookahead.update(model, decay=float(alpha[step]))
            if step >= total:
                lookahead.update(model, decay=1.0)
                break
        row = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "train_acc": correct / seen,
               "images_per_s": seen / (time.perf_counter() - t0), "epoch_s": time.perf_counter() - t0}
        if val_x is not None:
            row["val_acc"] = accuracy(model, val_x, val.labels, tta=False)
        history.append(row)
        if checkpoint is not None:
            save_resume(checkpoint, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                     "lookahead": lookahead.ema, "generator": gen.get_state(),
                                     "step": step, "epoch": epoch + 1, "history": history,
                                     "config": cfg.to_dict()})
        log(row)
    return model.cpu().eval(), history


def accuracy(model: nn.Module, x: torch.Tensor, labels: np.ndarray, tta: bool) -> float:
    return float((teacher_logits(model, x, tta).argmax(1).cpu().numpy() == labels).mean())


# ---------------------------------------------------------------- files
def save_teacher(model: TeacherNet, cfg: TeacherConfig, path: Path, card: dict) -> None:
    from safetensors.torch import save_file

    from ..atomic import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"kind": "airbench-teacher", "teacher_config": json.dumps(cfg.to_dict()),
            "card": json.dumps(card)}
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    write_atomic(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def load_teacher(path: Path) -> tuple[TeacherNet, TeacherConfig, dict]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
    if meta.get("kind") != "airbench-teacher":
        raise UserError(f"{Path(path).name} is not an airbench teacher checkpoint")
    cfg = TeacherConfig.from_dict(json.loads(meta["teacher_config"]))
    model = TeacherNet(cfg.widths, cfg.batchnorm_momentum)
    model.load_state_dict(load_file(str(path)))
    return model.eval(), cfg, json.loads(meta.get("card", "{}"))
