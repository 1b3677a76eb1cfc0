"""Sub-commands that run things (build, serve, rank). Registered on the CLI parser."""
from __future__ import annotations

import sys

from .errors import BuildError, LauncherError


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
    b.set_defaults(func=cmd_build)


def cmd_build(args) -> int:
    from .build import all_builds, ensure_build, make_request, request_for
    if args.list:
        builds = all_builds()
        if not builds:
            print("no builds yet: run `launch build`")
        for t in builds:
            print(f"{t.key}  {t.backend:<4}  {t.created}  {t.size_bytes / 2**20:7.1f} MiB  {t.source_id}  {t.path}")
        return 0
    if args.config_opt:
        from .config import load_config
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


def serve_config(path: str) -> int:
    raise LauncherError("serving is not implemented yet")
