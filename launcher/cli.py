"""`launch`: the only place that turns errors into messages and exit codes.

    launch --config X.yaml          validate, build if needed, start, serve (= launch serve --config X)
    launch validate [--offline] X.yaml...
    launch plan --config X.yaml [--json] [--offline] [--assume-devices cann:8]
    launch build [--backend cpu|cann|cuda] [--source DIR] [--force] [--list]
    launch schema
"""
from __future__ import annotations

import argparse
import json
import sys

from .errors import ConfigError, LauncherError


def _device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--offline", action="store_true",
                   help="skip checks that need the target machine (model file, devices, key files)")
    p.add_argument("--assume-devices", metavar="SPEC",
                   help="plan for devices that are not here: cann:8, cuda:2, cann:0,2,4 or cpu")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="launch", description="Serve GGUF models with llama.cpp from one YAML file.")
    parser.add_argument("--config", help="deployment config; without a command this serves it")
    sub = parser.add_subparsers(dest="command")

    v = sub.add_parser("validate", help="check configs and list every problem")
    v.add_argument("files", nargs="*", help="config files")
    v.add_argument("--config", dest="config_opt", help=argparse.SUPPRESS)
    _device_args(v)

    p = sub.add_parser("plan", help="print exactly what would run")
    p.add_argument("--config", dest="config_opt", required=True)
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    _device_args(p)

    sub.add_parser("schema", help="print the config JSON Schema")

    from .commands import register
    register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            if not args.config:
                parser.print_help()
                return 2
            from .commands import serve_config
            return serve_config(args.config)
        return _dispatch(args)
    except ConfigError as exc:
        errors = [p for p in exc.problems if not p.warning]
        print("\n".join(p.format() for p in exc.problems), file=sys.stderr)
        print(f"{len(errors)} problem(s); nothing was started.", file=sys.stderr)
        return exc.exit_code
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


def _assumed(args):
    from .devices import parse_assumed
    return parse_assumed(args.assume_devices) if args.assume_devices else None


def _dispatch(args) -> int:
    if args.command == "schema":
        from .config.schema import schema
        print(json.dumps(schema(), indent=1))
        return 0
    if args.command == "validate":
        return _validate(args)
    if args.command == "plan":
        return _plan(args)
    return args.func(args)


def _validate(args) -> int:
    from .config import load_config
    files = list(args.files) + ([args.config_opt] if args.config_opt else [])
    if not files:
        raise LauncherError("give one or more config files")
    status = 0
    for f in files:
        try:
            result = load_config(f, offline=args.offline, assume=_assumed(args))
        except ConfigError as exc:
            print("\n".join(p.format() for p in exc.problems), file=sys.stderr)
            print(f"{f}: {sum(not p.warning for p in exc.problems)} problem(s)", file=sys.stderr)
            status = 2
            continue
        for w in result.warnings:
            print(w.format(), file=sys.stderr)
        print(f"{f}: ok")
    return status


def _plan(args) -> int:
    from .config import load_config
    from .plan import plan_for_here
    from .plan.render import to_json, to_shell
    assumed = _assumed(args)
    result = load_config(args.config_opt, offline=args.offline, assume=assumed)
    for w in result.warnings:
        print(w.format(), file=sys.stderr)
    plan = plan_for_here(result.config, assumed=assumed)
    print(to_json(plan) if args.json else to_shell(plan), end="" if not args.json else "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
