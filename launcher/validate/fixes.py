"""Will it fit: devices over their memory, and the cheapest changes that make the model fit,
each checked by planning again with it."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from ..config.model import ModelSpec
from ..memory.estimate import DeviceUse, MiB
from ..memory.plan import plan_memory
from ..memory.shape import ModelShape
from ..toolchain.quantize import quantize_command
from ..units import show_mib

# Bits per weight of the quantizations offered, largest first (whole-file averages of llama-quantize's mixes).
QUANTS = (("Q8_0", 8.5), ("Q6_K", 6.56), ("Q5_K_M", 5.7), ("Q4_K_M", 4.9), ("Q4_0", 4.5), ("Q3_K_M", 3.9),
          ("Q2_K", 3.4))
CANN_QUANTS = ("Q8_0", "Q4_0")   # the types ggml-cann's matmul accelerates


def shortfall(row: DeviceUse) -> str:
    parts = f"weights {show_mib(row.weights / MiB)} + KV {show_mib(row.kv / MiB)} + compute {show_mib(row.compute / MiB)}"
    return (f"{row.name} needs {show_mib(row.total / MiB)} ({parts}) but has {show_mib(row.capacity / MiB)}: "
            f"{show_mib((row.total - row.capacity) / MiB)} short")


def fixes(spec: ModelSpec, shape: ModelShape, groups: list[tuple[int, ...]], capacity_mib: Callable,
          spare_ids: tuple[int, ...] = (), host_mib: int | None = None) -> list[str]:
    """Changes that make every device fit, cheapest first; [] when it fits already or nothing simple does."""
    def fits(sp: ModelSpec = spec, sh: ModelShape = shape, gr: list = groups) -> bool:
        return not plan_memory(sp, sh, gr, capacity_mib, host_mib).over()

    if fits():
        return []
    out = []
    base = plan_memory(spec, shape, groups, capacity_mib, host_mib)
    n_ctx = _largest_context(spec, shape, fits, base.settings.n_ctx)
    if n_ctx:
        out.append(f"n_ctx: {n_ctx} (now {base.settings.n_ctx})")
    if base.settings.cache_k != "q8_0" or base.settings.cache_v != "q8_0":
        q8 = replace(spec, params=replace(spec.params, cache_type_k="q8_0", cache_type_v="q8_0",
                                          flash_attn=spec.params.flash_attn or "on"))
        if fits(q8):
            out.append("cache_type_k: q8_0 and cache_type_v: q8_0 (half the KV cache; needs flash_attn)")
    more = _one_more_device(spec, groups, spare_ids)
    if more and fits(more[0], shape, more[1]):
        out.append(more[2])
    quant = _smaller_quant(spec, shape, fits)
    if quant:
        out.append(quant)
    return out


def _largest_context(spec: ModelSpec, shape: ModelShape, fits, current: int) -> int | None:
    lo, hi = 0, current // 256   # in units of 256 cells, llama.cpp's padding
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(replace(spec, params=replace(spec.params, n_ctx=mid * 256))):
            lo = mid
        else:
            hi = mid - 1
    return lo * 256 if lo else None


def _one_more_device(spec: ModelSpec, groups: list, spare: tuple[int, ...]):
    if spec.parallel.mode not in ("single", "layer") or spec.devices.backend == "cpu" or not groups:
        return None
    group = groups[0]
    extra = next((d for d in spare if d not in group), None)
    if extra is None:
        return None
    ids = (*group, extra)
    sp = replace(spec, devices=replace(spec.devices, ids=ids),
                 parallel=replace(spec.parallel, mode="layer"),
                 params=replace(spec.params, tensor_split=None))
    return sp, [ids], f"one more device: parallel.mode: layer, devices.ids: {list(ids)}"


def _smaller_quant(spec: ModelSpec, shape: ModelShape, fits) -> str | None:
    if not shape.n_params:
        return None
    now = shape.weight_bytes * 8 / shape.n_params
    allowed = CANN_QUANTS if spec.devices.backend == "cann" else tuple(q for q, _ in QUANTS)
    for name, bits in QUANTS:
        if name in allowed and bits < now * 0.95 and fits(sh=shape.requantized(bits / now)):
            size = show_mib(shape.weight_bytes * bits / now / MiB)
            return f"a smaller quant: {name} (weights about {size}): {quantize_command(spec.model, name.lower())}"
    return None
