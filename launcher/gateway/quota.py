"""Limits per named key: requests started and tokens used in any 60 seconds, and requests running at once.

A request is admitted (or refused with 429) where it reaches its model (dispatch.py), before any engine
work; it gives its running slot back and adds the tokens the engine reported when it ends, streams included.
A refusal carries Retry-After and OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens} headers.
The clock is a parameter: tier-1 tests move it by hand.
"""
from __future__ import annotations

import contextvars
import math
import re
import time
from collections import deque
from typing import Callable

from ..errors import APIError
from .keys import Identity

WINDOW = 60.0

# How the request being served reports the tokens the engine counted (prompt, completion): set by its
# Dispatch, called by whatever reads the engine's answer (proxy.py, the KServe streams).
reporting: contextvars.ContextVar[Callable[[int, int], None] | None] = contextvars.ContextVar(
    "launcher_token_report", default=None)


def report(prompt: int, completion: int) -> None:
    if (sink := reporting.get()) is not None:
        sink(prompt, completion)


_PROMPT = re.compile(rb'"(?:prompt|input)_tokens":\s*(\d+)')
_COMPLETION = re.compile(rb'"(?:completion|output)_tokens":\s*(\d+)')


def usage_in(data: bytes) -> tuple[int, int] | None:
    """(prompt, completion) tokens from an answer or stream event that carries them (OpenAI's usage,
    Anthropic's and the Responses API's input/output tokens), else None."""
    prompt, completion = _PROMPT.findall(data), _COMPLETION.findall(data)
    if not prompt and not completion:
        return None
    return max(map(int, prompt), default=0), max(map(int, completion), default=0)


class RateLimited(APIError):
    status, type, code = 429, "rate_limit_error", "rate_limit_exceeded"


class _Use:
    __slots__ = ("starts", "tokens", "running")

    def __init__(self):
        self.starts: deque[float] = deque()             # when each request of the window started
        self.tokens: deque[tuple[float, int]] = deque()  # (when, how many) of the window's finished requests
        self.running = 0

    def prune(self, now: float) -> None:
        while self.starts and self.starts[0] <= now - WINDOW:
            self.starts.popleft()
        while self.tokens and self.tokens[0][0] <= now - WINDOW:
            self.tokens.popleft()

    def used(self) -> int:
        return sum(n for _, n in self.tokens)


class Quota:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._use: dict[str, _Use] = {}

    def admit(self, who: Identity) -> None:
        """Count a request in, or raise RateLimited saying which limit and when it frees."""
        if not who.limited:
            return
        now, use = self.clock(), self._use.setdefault(who.name, _Use())
        use.prune(now)
        headers = self._headers(who, use, now)
        if who.max_concurrent and use.running >= who.max_concurrent:
            raise RateLimited(f"key {who.name!r} already runs {use.running} requests (max_concurrent "
                              f"{who.max_concurrent}); retry when one ends", headers=headers | {"Retry-After": "1"})
        if who.requests_per_minute and len(use.starts) >= who.requests_per_minute:
            wait = use.starts[0] + WINDOW - now
            raise RateLimited(f"key {who.name!r} started {len(use.starts)} requests in the last minute "
                              f"(requests_per_minute {who.requests_per_minute}); retry in {wait:.0f}s",
                              headers=headers | {"Retry-After": str(max(1, math.ceil(wait)))})
        if who.tokens_per_minute and use.used() >= who.tokens_per_minute:
            wait = self._tokens_free_in(who, use, now)
            raise RateLimited(f"key {who.name!r} used {use.used()} tokens in the last minute (tokens_per_minute "
                              f"{who.tokens_per_minute}); retry in {wait:.0f}s",
                              headers=headers | {"Retry-After": str(max(1, math.ceil(wait)))})
        use.starts.append(now)
        use.running += 1

    def finish(self, who: Identity, tokens: int) -> None:
        """A request of `who` ended, having used `tokens` (prompt + completion) as the engine reported."""
        if not who.limited:
            return
        use = self._use.setdefault(who.name, _Use())
        use.running = max(use.running - 1, 0)
        if tokens > 0:
            use.tokens.append((self.clock(), tokens))

    def _tokens_free_in(self, who: Identity, use: _Use, now: float) -> float:
        """Seconds until enough of the window's tokens expire to be under the limit again."""
        over = use.used() - who.tokens_per_minute + 1
        for when, n in use.tokens:
            over -= n
            if over <= 0:
                return when + WINDOW - now
        return WINDOW

    def _headers(self, who: Identity, use: _Use, now: float) -> dict[str, str]:
        """OpenAI's rate-limit headers for the limits this key has."""
        out = {}
        if who.requests_per_minute:
            reset = use.starts[0] + WINDOW - now if use.starts else 0.0
            out |= {"x-ratelimit-limit-requests": str(who.requests_per_minute),
                    "x-ratelimit-remaining-requests": str(max(who.requests_per_minute - len(use.starts), 0)),
                    "x-ratelimit-reset-requests": duration(reset)}
        if who.tokens_per_minute:
            used = use.used()
            out |= {"x-ratelimit-limit-tokens": str(who.tokens_per_minute),
                    "x-ratelimit-remaining-tokens": str(max(who.tokens_per_minute - used, 0)),
                    "x-ratelimit-reset-tokens": duration(self._tokens_free_in(who, use, now) if used else 0.0)}
        return out


def duration(seconds: float) -> str:
    """OpenAI's form: `20ms`, `6s`, `1m30s`."""
    if seconds < 1:
        return f"{max(int(seconds * 1000), 0)}ms"
    whole = math.ceil(seconds)
    return f"{whole // 60}m{whole % 60}s" if whole >= 60 else f"{whole}s"
