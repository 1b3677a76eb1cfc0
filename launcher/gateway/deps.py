"""What routes share: the gateway's state (set by the lifespan) and the API-key checks."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from fastapi import Request

from ..errors import BadRequest, ManagementDisabled, Unauthorized
from ..supervise.deployment import Deployment
from .activity import Activity
from .auth import key_ok, presented_key
from .keys import Keyring, current
from .metrics import Metrics
from .pool import ModelPool
from .proxy import Forwarder
from .quota import Quota
from .registry import Registry
from .routing import Router
from .usage import UsageStore

if TYPE_CHECKING:  # the management front is built on this core, not the other way round
    from .manage.manager import ModelManager


@dataclass
class GatewayState:
    deployment: Deployment
    pool: ModelPool
    forwarder: Forwarder
    metrics: Metrics
    keyring: Keyring              # who each key is (keys.py); the flat keys are identities without a name
    admin_key_env: str | None
    manager: ModelManager | None   # when /api/v1 may change models
    router: Router
    replica_id: str          # this gateway's name in registries (ours and others')
    public_url: str          # where others reach this gateway
    grpc_endpoint: str | None = None
    exiting: Callable[[], bool] = field(default=lambda: False)  # shutting down: long streams end
    activity: Activity = field(default_factory=Activity)        # recent requests, for the console
    quota: Quota = field(default_factory=Quota)                  # named keys' limits (quota.py)
    usage: UsageStore = field(default_factory=lambda: UsageStore(None))  # per key × model × hour (usage.py)

    @property
    def keys(self) -> tuple[str, ...]:
        """Every key's secret: empty when the gateway is open."""
        return self.keyring.secrets

    @property
    def registry(self) -> Registry:
        return self.router.registry


def state(request: Request) -> GatewayState:
    return request.app.state.gw


# The checks are `async def` though they never wait: FastAPI runs a plain `def` dependency in a worker
# thread, a thread hop on every request (measured with `launch bench cost`).
async def require_key(request: Request) -> None:
    """The request's key, resolved to who holds it (keys.current, read where it reaches a model)."""
    st = state(request)
    if not st.keys:
        return
    who = st.keyring.identify(presented_key(request.headers))
    if who is None:
        raise Unauthorized("missing or wrong API key: send `Authorization: Bearer <key>` or `X-Api-Key`")
    current.set(who)


async def require_admin(request: Request) -> None:
    """The management API needs the admin key when the gateway has keys at all."""
    st = state(request)
    if not st.keys:
        return  # no keys at all: a local, open setup
    admin = os.environ.get(st.admin_key_env, "") if st.admin_key_env else ""
    if not admin:
        raise ManagementDisabled("the gateway has API keys but no admin key: set gateway.admin_key_env")
    if not key_ok(presented_key(request.headers), (admin,)):
        raise Unauthorized("the management API needs the admin key")


async def require_register(request: Request) -> None:
    """Registering a replica diverts traffic to it: the admin key when there is one, else an API key."""
    st = state(request)
    admin = os.environ.get(st.admin_key_env, "") if st.admin_key_env else ""
    if admin:
        if not key_ok(presented_key(request.headers), (admin,)):
            raise Unauthorized("registering a replica needs the admin key")
        return
    await require_key(request)


async def json_object(request: Request) -> tuple[dict, bytes]:
    """The request body as a JSON object (and its raw bytes), or 400."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body, raw
