"""Commands that run things: serve (a config or one GGUF file), run (a Python worker app), build, models,
status, rank, bench.

The gateway's imports (FastAPI, uvicorn, prometheus) cost about half a second, so the commands
that serve import `..serve` when they run; `launch validate` and `launch plan` never pay for it.
"""
from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import httpx
import yaml

from ..bench import ceiling, chaos, cost, llama_cli, memory_accuracy, middleware, overhead, serve_bench, workers
from ..binaries import help_text
from ..config.schema import annotated, property_schema
from ..engines.programs import LLAMA_QUANTIZE
from ..errors import BuildError, LauncherError
from ..gateway.auth import load_keys
from ..gateway.usage import FIELDS, UsageStore, default_path, parse_since
from ..gguf_info import summarize
from ..models.catalog import format_table, list_gguf
from ..mpi.rank import mpi_world, run_rank
from ..paths import cache_dir
from ..pods.roles import LEADER_WORKER_SET, pod_role
from ..toolchain import all_builds, ensure_build, make_request, request_for
from ..toolchain.quantize import plan_quantize, run_quantize
from ..validate import load_config, load_source
from ..validate.anyserve import document_defaults, gpu_layers


def register(sub) -> None:
    b = sub.add_parser("build", help="build llama.cpp (cached by its inputs)")
    b.add_argument("--backend", choices=["cpu", "cann", "cuda"], help="default: the config's, else cpu")
    b.add_argument("--source", help="llama.cpp tree (default: the pinned upstream tree)")
    b.add_argument("--config", dest="config_opt", help="take backend, source and flags from this config")
    b.add_argument("--soc-type", help="Ascend SoC, e.g. Ascend910B3 (cann)")
    b.add_argument("--cuda-architectures", help="e.g. 80;90 (cuda)")
    b.add_argument("--portable", action="store_true", help="cpu: GGML_NATIVE=OFF")
    b.add_argument("--force", action="store_true", help="rebuild even when cached")
    b.add_argument("--list", action="store_true", help="list cached builds")
    b.set_defaults(func=build)

    s = sub.add_parser("serve", help="serve a config, or one GGUF file without writing YAML")
    s.add_argument("model", nargs="?", help="GGUF file to serve directly (builds the config in memory)")
    s.add_argument("--config", dest="config_opt", help="deployment config")
    s.add_argument("--watch-config", action="store_true", help="reload the config whenever the file changes "
                   "(SIGHUP reloads it too)")
    for key, option in annotated("x-serve-option").items():
        s.add_argument(option, dest=key, type=_option_type(key), help=property_schema((key,)).get("description"))
    s.add_argument("--backend", choices=["cpu", "cann", "cuda"], default="cpu")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=document_defaults()["port"],
                   help="OpenAI, KServe v2 REST and gRPC (told apart by each connection's first bytes)")
    s.add_argument("--grpc-port", type=int, help="KServe v2 gRPC on a port of its own too")
    s.add_argument("--openai-port", type=int, help="the OpenAI API on this port too (anyserve: KServe on --port)")
    s.set_defaults(func=serve)

    ru = sub.add_parser("run", help="serve a Python worker app (module:app) behind the gateway, routed by capability")
    ru.add_argument("app", help="module:attribute of a launcher.worker App (of a function returning one, with "
                                "--factory); imported from the current folder")
    ru.add_argument("--factory", action="store_true", help="call APP in each worker process to get the App")
    ru.add_argument("--workers", type=int, default=1, help="worker processes (default 1); with --max-workers, "
                                                           "the fewest that run")
    ru.add_argument("--max-workers", type=int, help="start more processes, up to this many, while requests wait "
                                                    "(and stop them again when idle)")
    ru.add_argument("--threads", type=int, default=4, help="handlers one process runs at once (default 4)")
    ru.add_argument("--name", help="the worker's name in logs and metrics")
    ru.add_argument("--host", default="127.0.0.1")
    ru.add_argument("--port", type=int, default=8000, help="KServe v2 REST and gRPC, /route, /registry, metrics")
    ru.add_argument("--grpc-port", type=int, help="KServe v2 gRPC on a port of its own too")
    ru.add_argument("--openai-port", type=int, help="the gateway's HTTP API on this port too")
    ru.add_argument("--register-with", help="URL of another launch gateway to register this one's capabilities with")
    ru.set_defaults(func=run_app)

    q = sub.add_parser("quantize", help="requantize a GGUF with launcher's llama-quantize (CANN runs Q8_0/Q4_0)")
    q.add_argument("source", help="input GGUF")
    q.add_argument("target", help="output GGUF (never overwritten without --force)")
    q.add_argument("type", help="q8_0, q4_0, q5_0, ... (the types llama-quantize --help lists)")
    q.add_argument("--threads", type=int)
    q.add_argument("--force", action="store_true", help="replace an existing output file")
    q.add_argument("--backend", choices=["cpu", "cann", "cuda"], default="cpu",
                   help="the build to make when none is cached yet (quantizing runs on the CPU)")
    q.set_defaults(func=quantize)

    r = sub.add_parser("rank", help="internal: what mpirun runs on each rank of an rpc job")
    r.add_argument("file", help="the job's ranks file written by launch")
    r.set_defaults(func=lambda args: run_rank(args.file))

    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench", required=True)
    overhead.register(bench)
    middleware.register(bench)
    llama_cli.register(bench)
    serve_bench.register(bench)
    workers.register(bench)
    chaos.register(bench)
    memory_accuracy.register(bench)
    cost.register(bench)
    ceiling.register(bench)

    m = sub.add_parser("models", help="list GGUF files with what their headers say")
    m.add_argument("dir", nargs="?", help="folder (default: the config's models_dir, else .)")
    m.add_argument("--config", dest="config_opt")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=models)

    us = sub.add_parser("usage", help="requests and tokens per key name, model and hour (the usage database)")
    us.add_argument("--config", dest="config_opt", required=True)
    us.add_argument("--since", default="24h", help="24h, 7d, an ISO time or epoch seconds (default 24h)")
    us.add_argument("--key", help="only this key name")
    us.add_argument("--model", help="only this model")
    us.add_argument("--format", choices=["table", "json", "csv"], default="table")
    us.set_defaults(func=usage)

    st = sub.add_parser("status", help="what the running gateway of a config serves")
    st.add_argument("--config", dest="config_opt", required=True)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=status)


def _option_type(key: str):
    """A command-line value as the schema types the key (`n_gpu_layers` takes a number or a word)."""
    kind = property_schema((key,)).get("type")
    if kind == "integer":
        return int
    if kind == "number":
        return float
    if kind is None:  # oneOf: a whole number if it reads as one, else the word
        return lambda text: int(text) if text.lstrip("-").isdigit() else text
    return str


def build(args) -> int:
    if args.list:
        builds = all_builds()
        if not builds:
            print("no builds yet: run `launch build`")
        for t in builds:
            print(f"{t.key}  {t.backend:<4}  {t.created}  {t.size_bytes / 2**20:7.1f} MiB  {t.source_id}  {t.path}")
        return 0
    if args.config_opt:
        req = request_for(load_config(args.config_opt, offline=True).config)
    else:
        req = make_request(args.backend or "cpu", args.source, soc_type=args.soc_type,
                           cuda_architectures=args.cuda_architectures, native=not args.portable)
    try:
        tree, built = ensure_build(req, force=args.force)
    except BuildError as exc:
        if exc.log_tail:
            print(exc.log_tail, file=sys.stderr)
        if exc.log_path:
            print(f"full log: {exc.log_path}", file=sys.stderr)
        raise
    print(f"{'built' if built else 'up to date'}: {tree.key} ({tree.backend}) in {tree.bin_dir}")
    return 0


def quantize(args) -> int:
    """Any cached build's llama-quantize will do (it runs on the CPU); else build one."""
    tree = next((t for t in all_builds() if t.binary(LLAMA_QUANTIZE).exists()), None)
    if tree is None:
        tree, _ = ensure_build(make_request(args.backend))
    binary = str(tree.binary(LLAMA_QUANTIZE))
    job = plan_quantize(binary, help_text(binary) or "", args.source, args.target, args.type, args.threads, args.force)
    if job.requantize:
        print(f"note: {job.source.name} is already quantized; requantizing loses some quality "
              "(quantize from its F16/F32 GGUF when you have one)", file=sys.stderr)
    logs = cache_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    run_quantize(job, logs / f"quantize-{job.target.name}.log")
    print(f"wrote {job.target} ({job.target.stat().st_size / 2**20:.0f} MiB, {summarize(job.target).quantization})")
    return 0


def serve_config(path: str, watch_config: bool = False) -> int:
    from ..pods import ascend_job, leader_worker
    from ..serve import serve as run
    from .under_mpirun import serve_under_mpirun
    result = load_config(path)
    for w in result.warnings:
        print(w.format(), file=sys.stderr)
    world = mpi_world()
    if world and result.config.models and result.config.models[0].parallel.uses_mpi:
        return serve_under_mpirun(result.config, world)
    role = pod_role(os.environ, result.config.models[0].parallel.mode) if len(result.config.models) == 1 else None
    if role is not None:   # in an operator's pod: the role it gave (pods/)
        if role.operator == LEADER_WORKER_SET:
            return leader_worker.serve_group(result.config, role)
        return ascend_job.serve_job(result.config, role)
    return run(result.config, watch_config=watch_config)


def quick_config_text(args) -> str:
    """`launch serve MODEL.gguf --n-ctx ...` as the YAML it stands for: same validation, same path. What is
    not given takes the anyserve document's default (n_ctx 2048, n_batch 512, every layer offloaded)."""
    data = {"model": str(args.model), "port": args.port, "hostname": args.host, "devices": {"backend": args.backend}}
    defaults = document_defaults()
    for key in annotated("x-serve-option"):
        value = getattr(args, key) if getattr(args, key) is not None else defaults.get(key)
        if value is not None:
            data[key] = gpu_layers(value) if key == "n_gpu_layers" else value
    gateway = {k: v for k, v in (("grpc_port", args.grpc_port), ("openai_port", args.openai_port)) if v}
    if gateway:
        data["gateway"] = gateway
    return yaml.safe_dump(data, sort_keys=False)


def serve(args) -> int:
    if args.config_opt:
        return serve_config(args.config_opt, args.watch_config)
    if not args.model:
        raise LauncherError("give a GGUF file (launch serve MODEL.gguf) or --config X.yaml")
    from ..serve import serve as run
    result = load_source(quick_config_text(args), str(Path.cwd() / "launch-serve.yaml"))
    return run(result.config)


def run_config_text(args) -> str:
    """`launch run module:app ...` as the YAML it stands for (a config with one worker and no model)."""
    processes = {"min": args.workers, "max": args.max_workers} if args.max_workers else args.workers
    worker = {"app": args.app, "processes": processes, "threads": args.threads, "path": str(Path.cwd())}
    if args.factory:
        worker["factory"] = True
    if args.name:
        worker["name"] = args.name
    gateway = {k: v for k, v in (("grpc_port", args.grpc_port), ("openai_port", args.openai_port),
                                 ("register_with", args.register_with)) if v}
    data = {"workers": [worker], "port": args.port, "hostname": args.host} | ({"gateway": gateway} if gateway else {})
    return yaml.safe_dump(data, sort_keys=False)


def run_app(args) -> int:
    from ..serve import serve as run
    result = load_source(run_config_text(args), str(Path.cwd() / "launch-run.yaml"))
    return run(result.config)


def models(args) -> int:
    folder = args.dir
    if folder is None and args.config_opt:
        folder = load_config(args.config_opt, offline=True).config.models_dir
    entries = list_gguf(folder or ".")
    print(json.dumps(entries, indent=1) if args.json else (format_table(entries) if entries else "no GGUF files"))
    return 0


def usage(args) -> int:
    """Read the usage database (as the gateway wrote it, up to 2 s ago): it works with the gateway down too."""
    cfg = load_config(args.config_opt, offline=True).config
    path = Path(cfg.gateway.usage_db) if cfg.gateway.usage_db else default_path(cfg.file, cache_dir())
    if not path.exists():
        raise LauncherError(f"no usage recorded yet: {path} does not exist (it is made when the gateway starts)")
    rows = UsageStore(path, check=False).rows(parse_since(args.since), args.key, args.model)
    if args.format == "json":
        print(json.dumps(rows, indent=1))
    elif args.format == "csv":
        out = csv.DictWriter(sys.stdout, fieldnames=["hour", "key", "model", *FIELDS])
        out.writeheader()
        out.writerows(rows)
    else:
        print(f"{'HOUR (UTC)':<22}{'KEY':<16}{'MODEL':<24}{'REQUESTS':>9}{'PROMPT':>9}{'COMPLETION':>11}{'ERRORS':>7}")
        for r in rows:
            print(f"{r['hour']:<22}{r['key'] or '-':<16}{r['model']:<24}{r['requests']:>9}{r['prompt_tokens']:>9}"
                  f"{r['completion_tokens']:>11}{r['errors']:>7}")
    return 0


def status(args) -> int:
    cfg = load_config(args.config_opt, offline=True).config
    gw = cfg.gateway
    url = gw.local_url + "/api/v1/model/status"
    headers = {}
    admin = os.environ.get(gw.admin_key_env or "", "")
    if admin:
        headers["Authorization"] = f"Bearer {admin}"
    try:
        resp = httpx.get(url, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        raise LauncherError(f"no gateway answers at {url}: is `launch --config {args.config_opt}` running?") from exc
    body = resp.json()
    if not body.get("success"):
        raise LauncherError(body.get("message", resp.text))
    if args.json:
        print(json.dumps(body["data"], indent=1))
        return 0
    print(f"{'MODEL':<24}{'STATE':<12}{'PID':>8}{'PORT':>7}{'RSS MiB':>9}{'DEV MiB':>9}{'RESTARTS':>9}  PATH")
    for m in body["data"]:
        print(f"{m['model_name']:<24}{m['state']:<12}{str(m['process_id'] or '-'):>8}{str(m['port'] or '-'):>7}"
              f"{m['host_rss_mib']:>9}{str(m['vram_usage'] or '-'):>9}{m['restarts']:>9}  {m['model_path']}")
    _print_devices(gw)
    return 0


def _print_devices(gw) -> None:
    """The gateway's latest npu-smi / nvidia-smi readings, when its backends have a tool."""
    keys = load_keys(gw)
    headers = {"Authorization": f"Bearer {keys[0]}"} if keys else {}
    try:
        devices = httpx.get(gw.local_url + "/api/devices", headers=headers, timeout=10).json().get("devices", {})
    except (httpx.HTTPError, ValueError):
        return
    rows = [(backend, chip) for backend, chips in devices.items() for chip in chips]
    if not rows:
        return
    print(f"\n{'DEVICE':<12}{'MODEL':<24}{'HEALTH':<8}{'UTIL %':>7}{'TEMP C':>7}{'POWER W':>8}{'MEM USED/TOTAL MiB':>21}")

    def show(value) -> str:
        return "-" if value is None else f"{value:g}"
    for backend, c in rows:
        used, total = (c["hbm_used"], c["hbm_total"]) if c["hbm_total"] else (c["memory_used"], c["memory_total"])
        print(f"{backend + ':' + str(c['id']):<12}{c['model_name']:<24}{'OK' if c['healthy'] else 'BAD':<8}"
              f"{show(c['utilization']):>7}{show(c['temperature']):>7}{show(c['power']):>8}"
              f"{show(used) + ' / ' + show(total):>21}")
