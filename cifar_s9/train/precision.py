"""Where and in which floating-point precision a run computes: the device, and bf16 autocast
where the hardware has it."""
from __future__ import annotations

from pathlib import Path

import torch

# Measured on the 2-core AMD EPYC (avx512_bf16), 20 epochs of the long recipe on 10,240 images:
# 74.5% validation in bf16 against 74.0% in fp32, 756 s against 916 s (docs/benchmarks.md)
CPU_BF16_BY_DEFAULT = True


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Native bf16 arithmetic (AVX512-BF16 or AMX) per the kernel's CPU flags; elsewhere (ARM,
    older x86) bf16 is emulated and slower. `cpuinfo`: the text of /proc/cpuinfo (tests)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:  # not Linux: no flags to read, so no claim of native bf16
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def use_bf16(device: torch.device, precision: str) -> bool:
    if precision == "bf16":
        return True
    if precision == "fp32":
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and CPU_BF16_BY_DEFAULT and cpu_has_bf16()


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was requested but no CUDA GPU is available")
    return torch.device(name)
