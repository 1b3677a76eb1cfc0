"""The Llama Switch API's `config` names (004) -> launcher's config keys.

One table, the schema's `x-switch-name` annotations, serves /api/v1/model/switch and the README.
Values come in the document's types (0/1 for switches, `tensor_split: "0.5,0.5"`) and are turned into
the config's. launcher's own model settings are accepted under their own names too.
"""
from __future__ import annotations

from typing import Any

from ..errors import LauncherError, did_you_mean
from .schema import annotated, model_settings, property_schema

# Accepted but not model settings: llama-switch starts each model's llama-server on this address;
# here engines listen on internal ports and clients use the gateway.
GATEWAY_NAMES = ("host", "port")


class UnknownSetting(LauncherError):
    def __init__(self, key: str, hint: str):
        self.key = key
        super().__init__(f"unknown config key {key!r}" + (f": {hint}" if hint else ""))


def switch_table() -> dict[str, str]:
    """Document name -> config key."""
    return {name: key for key, name in annotated("x-switch-name").items()}


def to_settings(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model settings in config keys, the host/port the caller gave)."""
    table = switch_table()
    settings: dict[str, Any] = {}
    ignored: dict[str, Any] = {}
    for name, value in config.items():
        if name in GATEWAY_NAMES:
            ignored[name] = value
            continue
        key = table.get(name, name)
        if key not in model_settings():
            raise UnknownSetting(name, did_you_mean(name, [*table, *model_settings(), *GATEWAY_NAMES]))
        converted = _convert(key, value)
        if converted is not None:
            settings[key] = converted
    return settings, ignored


def _convert(key: str, value: Any) -> Any:
    if key == "flash_attn" and (isinstance(value, bool) or value in (0, 1)):
        return "on" if value else "off"
    if key == "tensor_split" and isinstance(value, str):
        try:
            shares = [float(x) for x in value.replace("/", ",").split(",") if x.strip()]
        except ValueError:
            return value  # left for the schema to report
        return shares if any(shares) else None  # "0": no split
    if property_schema((key,)).get("type") == "boolean" and not isinstance(value, bool) and value in (0, 1):
        return bool(value)
    return value
