"""Commands that only read configs: validate, plan, schema. They start nothing."""
from __future__ import annotations

import argparse
import json
import sys

from ..config.schema import schema
from ..devices import parse_assumed
from ..errors import ConfigError, LauncherError
from ..plan import plan_for_here
from ..plan.render import to_json, to_shell
from ..validate import load_config


def device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--offline", action="store_true",
                   help="skip checks that need the target machine (model file, devices, key files)")
    p.add_argument("--assume-devices", metavar="SPEC",
                   help="plan for devices that are not here: cann:8, cuda:2, cann:0,2,4, cann:8x64g (with each one's memory) or cpu")


def register(sub) -> None:
    v = sub.add_parser("validate", help="check configs and list every problem")
    v.add_argument("files", nargs="*", help="config files")
    v.add_argument("--config", dest="config_opt", help=argparse.SUPPRESS)
    device_args(v)
    v.set_defaults(func=validate)

    p = sub.add_parser("plan", help="print exactly what would run")
    p.add_argument("--config", dest="config_opt", required=True)
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    device_args(p)
    p.set_defaults(func=plan)

    d = sub.add_parser("doctor", help="check this host (NPUs, CANN, driver, MPI, compiler, build) and a config on it")
    d.add_argument("--config", dest="config_opt", help="also check this config on this host")
    d.set_defaults(func=doctor)

    s = sub.add_parser("schema", help="print the config JSON Schema")
    s.set_defaults(func=lambda args: print(json.dumps(schema(), indent=1)) or 0)


def _assumed(args):
    return parse_assumed(args.assume_devices) if args.assume_devices else None


def report_config_error(exc: ConfigError, file: str | None = None) -> None:
    """Every problem, then a count: for one file of `validate`, or for a launch that started nothing."""
    print("\n".join(p.format() for p in exc.problems), file=sys.stderr)
    count = sum(not p.warning for p in exc.problems)
    print(f"{file}: {count} problem(s)" if file else f"{count} problem(s); nothing was started.", file=sys.stderr)


def validate(args) -> int:
    files = list(args.files) + ([args.config_opt] if args.config_opt else [])
    if not files:
        raise LauncherError("give one or more config files")
    status = 0
    for f in files:
        try:
            result = load_config(f, offline=args.offline, assume=_assumed(args))
        except ConfigError as exc:
            report_config_error(exc, f)
            status = 2
            continue
        for w in result.warnings:
            print(w.format(), file=sys.stderr)
        print(f"{f}: ok")
    return status


def plan(args) -> int:
    assumed = _assumed(args)
    result = load_config(args.config_opt, offline=args.offline, assume=assumed)
    for w in result.warnings:
        print(w.format(), file=sys.stderr)
    the_plan = plan_for_here(result.config, assumed=assumed, offline=args.offline)
    print(to_json(the_plan) if args.json else to_shell(the_plan), end="" if not args.json else "\n")
    return 0


def doctor(args) -> int:
    from ..doctor import examine, exit_code, render  # only this command reads the host's tools
    title, findings = examine(args.config_opt)
    print(render(title, findings), end="")
    return exit_code(findings)
