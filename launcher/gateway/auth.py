"""API keys: `Authorization: Bearer K` or `X-Api-Key: K`, compared in constant time.

Keys come from the config, a file or an environment variable; they never reach an
engine's argv or a log line.
"""
from __future__ import annotations

import hmac
import os
from pathlib import Path

from ..config.model import Gateway
from ..errors import LauncherError


def load_keys(gw: Gateway) -> tuple[str, ...]:
    keys = list(gw.api_keys)
    if gw.api_key_file:
        try:
            lines = Path(gw.api_key_file).read_text().splitlines()
        except OSError as exc:
            raise LauncherError(f"cannot read gateway.api_key_file {gw.api_key_file}: {exc.strerror}") from exc
        keys += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if gw.api_key_env:
        value = os.environ.get(gw.api_key_env, "")
        if not value:
            raise LauncherError(f"gateway.api_key_env names {gw.api_key_env}, which is empty or not set")
        keys += [k.strip() for k in value.split(",") if k.strip()]
    return tuple(dict.fromkeys(keys))


def presented_key(headers) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("x-api-key")


def key_ok(presented: str | None, keys: tuple[str, ...]) -> bool:
    if presented is None:
        return False
    given = presented.encode()
    # Compare against every key so timing says nothing about which (or whether one) matched.
    return sum(hmac.compare_digest(given, k.encode()) for k in keys) > 0
