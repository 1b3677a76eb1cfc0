"""A plan as copy-pasteable shell lines, or as JSON: the only place a plan is flattened into text."""
from __future__ import annotations

import json
import shlex

from ..capabilities import show
from ..config.dotenv_file import FILE_SOURCE
from ..memory.estimate import MiB
from .model import Plan, ProcessSpec


def to_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2)


def command_line(proc: ProcessSpec) -> str:
    env = [f"{k}={shlex.quote(v)}" for k, v in proc.env]
    return " ".join((["env"] + env if env else []) + [shlex.quote(a) for a in proc.argv])


def memory_table(mem) -> list[str]:
    """A MemoryPlan as comment lines: one row per device, sizes in MiB."""
    s = mem.settings
    head = (f"# memory (estimate): n_ctx {s.n_ctx}, {s.n_seq} slot(s){' sharing one cache' if s.unified else ''}, "
            f"KV {s.cache_k}/{s.cache_v}, flash attention {'on' if s.flash_attn else 'off'}, n_ubatch {s.ubatch}; "
            f"weights {mem.weights / MiB:.0f} MiB, KV {mem.kv_per_token} bytes/token")
    rows = [("device", "layers", "weights", "KV", "compute", "other", "total", "memory", "use")]
    for r in mem.rows:
        rows.append((r.name, r.layer_text, *(f"{x / MiB:.0f}" for x in (r.weights, r.kv, r.compute,
                                                                        r.output + r.repack, r.total)),
                     f"{r.capacity / MiB:.0f}" if r.capacity else "?", f"{r.use:.0%}" if r.use else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [head, "#   (MiB)"]
    for row in rows:
        lines.append("#   " + "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                                         enumerate(zip(row, widths))).rstrip())
    return lines + [f"#   note: {n}" for n in mem.notes]


def to_shell(plan: Plan) -> str:
    out = [f"# plan for {plan.config_file}"] + [f"# backend: {b} ({why})" for b, why in plan.backends] + \
        [f"# gateway: http://{plan.gateway_host}:{plan.gateway_port}/v1 (runs inside launch)"]
    if any(o.source == "the environment" or o.source.startswith(FILE_SOURCE) for o in plan.origins):  # in use:
        out.append("# settings of the Llama Switch .env names (the config overrides the environment, which "
                   "overrides the .env file):")
        out += [f"#   {o.env_name:<18} {o.setting:<13} {o.value}  <- {o.source}" for o in plan.origins]
    for placement in plan.placements:
        out += [""] + [f"# {line}" for line in placement.table()]
    for model in plan.models:
        out += ["", f"# model {model.name!r} (accepted names: {', '.join(model.aliases)}), mode {model.mode}"]
        if model.capabilities:
            out.append("# capabilities: " + ", ".join(show(c) for c in model.capabilities))
        for note in [i.format() for i in model.flag_issues] + list(model.notes):
            out.append(f"# note: {note}")
        if model.memory:
            out += memory_table(model.memory)
        for f in model.files:
            out += [f"mkdir -p {shlex.quote(f.path.rsplit('/', 1)[0])}",
                    f"cat > {shlex.quote(f.path)} <<'LAUNCHER_EOF'", f.content.rstrip("\n"), "LAUNCHER_EOF"]
        for proc in model.processes:
            out += [f"# {proc.name}: health {proc.health_url}" if proc.health_url else f"# {proc.name}",
                    command_line(proc) + " &"]
        for rank in model.ranks:
            out.append(f"#   rank {rank.rank} runs: {command_line(rank)}")
    for worker in plan.workers:
        out += ["", f"# worker {worker.name!r}: {len(worker.processes)} process(es)"]
        for proc in worker.processes:
            out += [f"# {proc.name}: health {proc.health_url}", command_line(proc) + " &"]
    return "\n".join(out) + "\n"
