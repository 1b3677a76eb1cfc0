"""Who is calling: the key a request presents, resolved to an `Identity` (a named key's name, the models it
may use, its limits; a key of the flat lists is an identity with no name and no limits).

The identity of the request being served is a context variable, set where the key is checked (deps.require_key,
the gRPC side) and read where the request reaches a model (dispatch.py): every route and protocol alike,
with no parameter threaded through them. Secrets stay in the keyring; only names leave it.
"""
from __future__ import annotations

import contextvars
import hmac
import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Iterable

from ..config.model import Gateway, NamedKey
from ..errors import LauncherError
from .auth import load_keys


@dataclass(frozen=True)
class Identity:
    name: str = ""                       # "" for a key of the flat lists (and for an open gateway)
    models: tuple[str, ...] = ("*",)     # globs of the model names and aliases it may use
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None

    def may_use(self, names: Iterable[str]) -> bool:
        """True if any of a model's names (its name, aliases, file name) matches one of the globs."""
        if self.models == ("*",):
            return True
        return any(fnmatchcase(n.casefold(), g.casefold()) for n in names for g in self.models)

    @property
    def limited(self) -> bool:
        return bool(self.requests_per_minute or self.tokens_per_minute or self.max_concurrent)


ANONYMOUS = Identity()
ADMIN = Identity("admin")
current: contextvars.ContextVar[Identity] = contextvars.ContextVar("launcher_identity", default=ANONYMOUS)


class Keyring:
    def __init__(self, entries: Iterable[tuple[str, Identity]] = ()):
        self.entries = tuple(entries)
        self.secrets = tuple(s for s, _ in self.entries)

    def identify(self, presented: str | None) -> Identity | None:
        """The identity of a presented key, None for a wrong or missing one. Every key is compared, so the
        time taken says nothing about which (or whether one) matched."""
        if presented is None:
            return None
        given, found = presented.encode(), None
        for secret, identity in self.entries:
            if hmac.compare_digest(given, secret.encode()) and found is None:
                found = identity
        return found

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(i.name for _, i in self.entries if i.name)


def load_keyring(gw: Gateway) -> Keyring:
    """The flat keys (no name, no limits) and the named ones, their secrets read now. When there are keys, the
    admin key is one too (named "admin", no limits): the operator opens the console and tries a model with it,
    and its requests are counted under that name."""
    entries = [(k, ANONYMOUS) for k in load_keys(gw)]
    for key in gw.keys:
        entries.append((_secret(key), Identity(key.name, key.models, key.requests_per_minute, key.tokens_per_minute,
                                               key.max_concurrent)))
    admin = os.environ.get(gw.admin_key_env, "").strip() if gw.admin_key_env else ""
    if entries and admin:
        entries.append((admin, ADMIN))
    return Keyring(entries)


def _secret(key: NamedKey) -> str:
    if key.key_env:
        value = os.environ.get(key.key_env, "").strip()
        if not value:
            raise LauncherError(f"gateway key {key.name!r}: the environment variable {key.key_env} is empty or not set")
        return value
    try:
        lines = [ln.strip() for ln in Path(key.key_file).read_text().splitlines() if ln.strip()]
    except OSError as exc:
        raise LauncherError(f"gateway key {key.name!r}: cannot read {key.key_file}: {exc.strerror}") from exc
    if not lines:
        raise LauncherError(f"gateway key {key.name!r}: {key.key_file} is empty")
    return lines[0]
