"""`launch`: the entry points, and the only place that turns errors into messages and exit codes.

    launch --config X.yaml          validate, build if needed, start, serve (= launch serve --config X)
    launch validate | plan | schema                         (config_commands)
    launch serve | build | models | status | rank | bench   (run_commands)
    launch export k8s | containerfile                       (export_commands)
    mpirun -np N launch --config X.yaml                     (under_mpirun)
"""
from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError, LauncherError
from . import config_commands, export_commands, run_commands
from .config_commands import report_config_error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="launch", description="Serve GGUF models with llama.cpp from one YAML file.")
    parser.add_argument("--config", help="deployment config; without a command this serves it")
    parser.add_argument("--watch-config", action="store_true",
                        help="reload the config whenever the file changes (SIGHUP reloads it too)")
    parser.set_defaults(func=_serve_top_level)
    sub = parser.add_subparsers(dest="command")
    config_commands.register(sub)
    run_commands.register(sub)
    export_commands.register(sub)
    return parser


def _serve_top_level(args) -> int:
    if not args.config:
        build_parser().print_help()
        return 2
    return run_commands.serve_config(args.config, args.watch_config)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        report_config_error(exc)
        return exc.exit_code
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
