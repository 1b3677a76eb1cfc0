"""Graceful drain: on the first SIGTERM or Ctrl-C the gateway stops taking work but finishes what it has.

    new HTTP requests   503 shutting_down in their family's envelope, `Connection: close` (/health stays 200)
    running requests    finish, streams included, up to gateway.drain_timeout
    gRPC                the server stops taking calls; running ones get the same time
    then                the usual shutdown: engines stopped, exit 0

`Drain` is the state; `DrainGate` the ASGI middleware that counts and refuses requests.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import ShuttingDown
from ..protocols.envelopes import error_response

log = logging.getLogger("launcher.gateway")
ALWAYS = ("/health",)  # liveness stays true while draining (readiness does not)


class Drain:
    def __init__(self, timeout: float):
        self.timeout = timeout
        self.draining = False
        self.active = 0
        self.on_begin: list[Callable[[float], Awaitable[None]]] = []  # e.g. the gRPC server's stop(grace)
        self._tasks: list[asyncio.Task] = []

    async def run(self) -> bool:
        """Drain: refuse new work, wait for the running requests (and on_begin's) up to the timeout.
        Returns whether everything finished in time."""
        self.draining = True
        started = time.monotonic()
        log.info("draining: %d request(s) running; new ones get 503 (up to %gs)", self.active, self.timeout)
        self._tasks = [asyncio.ensure_future(stop(self.timeout)) for stop in self.on_begin]
        while self.active and time.monotonic() - started < self.timeout:
            await asyncio.sleep(0.05)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=max(0.0, self.timeout - (time.monotonic() - started)))
        finished = not self.active
        log.info("drained in %.1fs" if finished else "drain timeout: %d request(s) cut off",
                 time.monotonic() - started if finished else self.active)
        return finished


class DrainGate:
    def __init__(self, app: ASGIApp, drain: Drain):
        self.app, self.drain = app, drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.drain.draining and scope["path"] not in ALWAYS:
            refusal = error_response(scope["path"], ShuttingDown("the gateway is shutting down; retry on another "
                                                                 "instance", retry_after=5))
            refusal.headers["connection"] = "close"
            return await refusal(scope, receive, send)
        self.drain.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.drain.active -= 1
