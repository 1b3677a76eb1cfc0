"""One worker process, as launcher starts it:

    python -m launcher.worker MODULE:ATTR [--factory] --port P [--host H] [--name N] [--threads T] [--path DIR]

It imports the app (calling ATTR when --factory: once per process, so each loads its own resources),
then serves it to the gateway on H:P. /health answers only once the app is loaded.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

import uvicorn

from .app import App
from .client import gateway_call
from .server import create_worker_app


def load_app(target: str, factory: bool) -> App:
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise SystemExit(f"worker app {target!r}: write it as module:attribute, e.g. examples.basic.app:app")
    module = importlib.import_module(module_name)
    obj = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise SystemExit(f"worker app {target!r}: module {module_name} has no {attr}")
    if factory:
        obj = obj()
    if not isinstance(obj, App):
        hint = " (it is a function: add --factory)" if callable(obj) and not factory else ""
        raise SystemExit(f"worker app {target!r} is a {type(obj).__name__}, not a launcher.worker.App{hint}")
    if not obj.handlers:
        raise SystemExit(f"worker app {target!r} has no handlers: decorate functions with @app.capability(...)")
    return obj


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher.worker")
    parser.add_argument("app", help="module:attribute of the App (or of its factory, with --factory)")
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default=None)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--path", action="append", default=[], help="prepended to sys.path (repeatable)")
    args = parser.parse_args(argv)
    sys.path[:0] = [p for p in args.path if p not in sys.path]
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    app = load_app(args.app, args.factory)
    web = create_worker_app(app, args.name or args.app, gateway_call, args.threads)
    print(f"worker {args.name or args.app}: {len(app.handlers)} handler(s), capabilities {app.capabilities()}",
          flush=True)
    uvicorn.run(web, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
