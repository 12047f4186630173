"""Which floating-point precision a run computes in: bf16 autocast where the hardware has it."""
from __future__ import annotations

import torch

# Measured on the 2-core AMD EPYC (avx512_bf16): see docs/benchmarks.md, "bf16 on the CPU".
CPU_BF16_BY_DEFAULT = False


def cpu_has_bf16() -> bool:
    """Native bf16 arithmetic (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slower."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    cpu = getattr(torch._C, "_cpu", None)
    return any(bool(getattr(cpu, name, lambda: False)()) for name in probes)


def use_bf16(device: torch.device, precision: str) -> bool:
    if precision == "bf16":
        return True
    if precision == "fp32":
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and CPU_BF16_BY_DEFAULT and cpu_has_bf16()
