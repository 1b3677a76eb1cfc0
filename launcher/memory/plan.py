"""The memory plan of one model: its engine settings with the engine's defaults filled in, the
devices of its processes (as the planner lays them out), and each device's bytes against its size.
Pure: the GGUF shape, device ids and sizes come in as arguments.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..config.model import ModelSpec
from ..devices import DEVICE_PREFIX
from ..engines import engine_for
from .estimate import DeviceUse, MiB, Settings, estimate, kv_bytes_per_token
from .shape import ModelShape

AUTO_LAYERS = (None, "auto", "all", -1)
NEAR_FULL = 0.9
DEVICE_WORD = {"cann": "NPU", "cuda": "GPU"}


def settings_for(spec: ModelSpec, shape: ModelShape) -> Settings:
    """What the engine will run with: the config's values, else that engine kind's defaults."""
    p = spec.params
    ngl = None if p.n_gpu_layers in AUTO_LAYERS else int(p.n_gpu_layers)
    return Settings(cache_k=p.cache_type_k or "f16", cache_v=p.cache_type_v or "f16", swa_full=bool(p.swa_full),
                    n_gpu_layers=ngl, split=tuple(p.tensor_split or ()),
                    single_device=(p.main_gpu or 0) if p.split_mode == "none" else None,
                    **engine_for(spec).memory_defaults(spec, shape.context_length))


@dataclass(frozen=True)
class MemoryPlan:
    model: str
    rows: tuple[DeviceUse, ...]       # the host first, then each device
    settings: Settings
    weights: int                      # bytes of the file's tensors
    kv_per_token: int                 # K+V bytes of one token over every layer
    notes: tuple[str, ...] = ()

    def over(self) -> list[DeviceUse]:
        """Devices the estimate does not fit on (the host may swap or page the mapped file: not counted)."""
        return [r for r in self.rows if r.device_id is not None and r.capacity and r.total > r.capacity]

    def near_full(self) -> list[DeviceUse]:
        return [r for r in self.rows if r.device_id is not None and r.use and NEAR_FULL < r.use <= 1]

    def to_dict(self) -> dict:
        return {"weights_bytes": self.weights, "kv_bytes_per_token": self.kv_per_token,
                "n_ctx": self.settings.n_ctx, "n_parallel": self.settings.n_seq,
                "devices": [{"device": r.name, "id": r.device_id, "layers": r.layer_text, "weights": r.weights,
                             "kv": r.kv, "compute": r.compute, "output": r.output, "repack": r.repack,
                             "total": r.total, "capacity": r.capacity} for r in self.rows],
                "notes": list(self.notes)}


def plan_memory(spec: ModelSpec, shape: ModelShape, groups: list[tuple[int, ...]],
                capacity_mib: Callable[[int], int | None], host_mib: int | None = None) -> MemoryPlan:
    """`groups`: the device ids of each engine process (one group per replica; rpc and ep_tp: the job's ids)."""
    s = settings_for(spec, shape)
    backend = spec.devices.backend

    def cap(dev_id: int) -> int | None:
        mib = spec.devices.memory or capacity_mib(dev_id)
        return mib * MiB if mib else None

    host_cap = host_mib * MiB if host_mib else None
    notes = []
    mode = spec.parallel.mode
    if mode == "rpc":
        rows = _rpc_rows(spec, shape, s, groups[0] if groups else (), cap, host_cap)
    elif mode == "ep_tp":
        rows = _ep_tp_rows(spec, shape, s, groups[0] if groups else (), cap, host_cap)
        notes.append("ep_tp: per rank, dense weights / tp_size and experts / (ep_size x moe_tp_size); "
                     "the fork's own layout may differ")
    else:
        rows = _engine_rows(spec, shape, s, groups or [()], cap, host_cap)
    if shape.recurrent:
        notes.append("recurrent state (SSM/RWKV) is not estimated")
    if backend != "cpu":
        notes.append(f"{backend} compute buffers are estimated with the CPU formula (measured on CPU only)")
    return MemoryPlan(spec.name, rows, s, shape.weight_bytes, kv_bytes_per_token(shape, s.cache_k, s.cache_v),
                      tuple(notes))


def _device(backend: str, dev_id: int, index: int, cap, prefix: str = "") -> tuple[str, int, int | None]:
    name = f"{prefix}{DEVICE_WORD.get(backend, 'device')} {dev_id} ({DEVICE_PREFIX.get(backend, '')}{index})"
    return name, dev_id, cap(dev_id)


def _merge_hosts(rows: list[DeviceUse]) -> DeviceUse:
    first = rows[0]
    if len(rows) == 1:
        return first
    return DeviceUse(f"host ({len(rows)} processes)", None, first.layers, sum(r.weights for r in rows),
                     sum(r.kv for r in rows), sum(r.compute for r in rows), sum(r.output for r in rows),
                     sum(r.repack for r in rows), first.capacity)


def _engine_rows(spec, shape, s, groups, cap, host_cap) -> tuple[DeviceUse, ...]:
    hosts, devices = [], []
    for group in groups:
        devs = [_device(spec.devices.backend, d, k, cap) for k, d in enumerate(group)]
        host, *rows = estimate(shape, s, devs, host_cap)
        hosts.append(host)
        devices += rows
    return (_merge_hosts(hosts), *devices)


def _rpc_rows(spec, shape, s, ids, cap, host_cap) -> tuple[DeviceUse, ...]:
    """Rank 0's llama-server puts the RPC devices (ranks 1..) first, then its own device (llama.cpp's order)."""
    backend = spec.devices.backend
    devs = []
    for r in range(1, spec.parallel.ranks):
        if ids:
            dev_id = ids[r % len(ids)]
            devs.append((f"rank {r}: {DEVICE_WORD.get(backend)} {dev_id} (RPC{r - 1})", dev_id, cap(dev_id)))
        else:  # a CPU rank: its RPC device is that host's memory
            devs.append((f"rank {r}: host (RPC{r - 1})", -r, host_cap))
    if ids:
        devs.append(_device(backend, ids[0], 0, cap, "rank 0: "))
    return estimate(shape, s, devs, host_cap)


def _ep_tp_rows(spec, shape, s, ids, cap, host_cap) -> tuple[DeviceUse, ...]:
    par = spec.parallel
    full, *_ = estimate(shape, s, [], host_cap, host_repacks=False)
    experts = sum(shape.layer_experts)
    dense = sum(shape.layer_bytes) - experts + shape.output_bytes + shape.output_copy
    weights = dense // max(par.tp_size, 1) + experts // max(par.ep_size * par.moe_tp_size, 1)
    kv = full.kv if shape.mla else full.kv // max(par.tp_size, 1)  # MLA's latent is not split across heads
    ranks = [ids[r % len(ids)] for r in range(par.ranks)] if ids else []
    rows = [DeviceUse(f"rank {r}: {DEVICE_WORD.get(spec.devices.backend)} {d}", d, tuple(range(shape.n_layer)),
                      weights, kv, full.compute, capacity=cap(d)) for r, d in enumerate(ranks)]
    host = DeviceUse("host (rank 0)", None, (), shape.input_bytes, 0, 2 * s.ubatch * shape.n_embd * 4,
                     full.output, 0, host_cap)
    return (host, *rows)
