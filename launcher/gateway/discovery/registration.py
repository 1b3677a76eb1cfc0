"""`gateway.register_with`: keep this gateway registered with another (the API server), so that one
routes matching requests here. The registration is a stream held open; when it drops (the other
gateway restarted, the network failed) we register again, backing off; when what we serve changes (a
worker became ready, a model was added) we register again with the new capabilities."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import httpx

from ...config.model import Gateway
from ...supervise.states import ModelState
from ..deps import GatewayState
from .routes import HEARTBEAT

log = logging.getLogger("launcher.registration")
MAX_BACKOFF = 30.0


class Refused(Exception):
    pass


class Registrar:
    def __init__(self, st: GatewayState, url: str, key: str | None):
        self.st, self.url, self.key = st, url.rstrip("/") + "/register", key
        self.registered = False
        self.sent: list[dict] | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._unsubscribe = st.deployment.events.subscribe(self._on_event)

    @classmethod
    def start(cls, st: GatewayState, gw: Gateway) -> "Registrar":
        key = os.environ.get(gw.register_key_env) if gw.register_key_env else None
        registrar = cls(st, gw.register_with, key)
        registrar._task = asyncio.get_running_loop().create_task(registrar._run())
        return registrar

    def _on_event(self, event) -> None:
        if self.sent is not None and self.st.router.local_capabilities() != self.sent:
            self._changed.set()

    def body(self) -> dict:
        self.sent = self.st.router.local_capabilities()
        return {"replica_id": self.st.replica_id, "endpoint": self.st.public_url,
                "grpc_endpoint": self.st.grpc_endpoint, "capabilities": self.sent}

    async def _run(self) -> None:
        delay = 1.0
        headers = {"authorization": f"Bearer {self.key}"} if self.key else {}
        timeout = httpx.Timeout(10.0, read=HEARTBEAT * 5)  # no heartbeat for that long: the stream is dead
        await self._settled()
        async with httpx.AsyncClient(timeout=timeout) as client:
            while True:
                self._changed.clear()
                try:
                    await self._hold(client, headers)
                    delay = 1.0
                except Refused as exc:
                    log.error("registration with %s refused: %s", self.url, exc)
                except (httpx.HTTPError, OSError) as exc:
                    log.warning("registration with %s lost (%s); retrying in %.0fs", self.url,
                                type(exc).__name__, delay)
                self.registered = False
                if not self._changed.is_set():
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), delay)
                    delay = min(delay * 2, MAX_BACKOFF)

    async def _settled(self, most: float = 600.0) -> None:
        """Wait (bounded) for what is starting to be up, so the first registration is already complete."""
        deadline = asyncio.get_running_loop().time() + most
        while any(r.state == ModelState.STARTING for r in self.st.deployment.everything):
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.2)

    async def _hold(self, client: httpx.AsyncClient, headers: dict) -> None:
        """Register and hold the stream until it ends or our capabilities change."""
        async with client.stream("POST", self.url, json=self.body(), headers=headers) as resp:
            if resp.status_code != 200:
                raise Refused(f"{resp.status_code} {(await resp.aread()).decode(errors='replace')[:300]}")
            self.registered = True
            log.info("registered with %s as %s (%d capabilities)", self.url, self.st.replica_id, len(self.sent))
            reader = asyncio.ensure_future(self._drain(resp))
            changed = asyncio.ensure_future(self._changed.wait())
            try:
                await asyncio.wait({reader, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (reader, changed):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if reader.done() and not reader.cancelled() and reader.exception():
                raise reader.exception()
            if not self._changed.is_set():
                raise httpx.RemoteProtocolError("the registration stream ended")

    @staticmethod
    async def _drain(resp: httpx.Response) -> None:
        async for _ in resp.aiter_lines():
            pass

    async def stop(self) -> None:
        self._unsubscribe()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
