"""One request's way through the gateway, the same for every protocol: the caller's key may use the model (a
named key's globs) and is within its limits (quota.py), the request is admitted to its model (a model held
stopped refuses), the model loaded when it is not, counted in the metrics by protocol and key, released
when the answer, or the stream that outlives the route, is done, with the tokens the engine reported."""
from __future__ import annotations

import time

from ..errors import APIError, Forbidden
from ..supervise.targets import Target
from .deps import GatewayState
from .keys import current
from .quota import reporting


def names_of(target: Target) -> tuple[str, ...]:
    plan = getattr(target, "plan", None)
    return tuple(plan.aliases) if plan is not None else (target.name,)


class Dispatch:
    def __init__(self, st: GatewayState, runner: Target, protocol: str, endpoint: str):
        self.st, self.runner, self.protocol, self.endpoint = st, runner, protocol, endpoint
        self.status = 500
        self.tokens_out: int | None = None   # known for streams (proxy.SSEPassthrough)
        self.ttft: float | None = None
        self.prompt_tokens = self.completion_tokens = 0   # as the engine reported them
        self.who = current.get()
        self._handed_over = self._released = False

    def reported(self, prompt: int, completion: int) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion

    async def __aenter__(self) -> "Dispatch":
        try:
            if not self.who.may_use(names_of(self.runner)):
                raise Forbidden(f"key {self.who.name!r} may not use model {self.runner.name!r}")
            self.st.pool.admit(self.runner)
            self.st.quota.admit(self.who)
        except APIError as exc:   # refused before the engine: a request and an error in the usage
            self.st.usage.record(self.who.name, self.runner.name, exc.status, 0, 0)
            if self.who.name:
                self.st.metrics.key_requests.labels(self.who.name, self.runner.name, str(exc.status)).inc()
            raise
        reporting.set(self.reported)
        self.st.metrics.in_flight.labels(self.runner.name).inc()
        self.runner.pending += 1  # pinned: the pool must not evict it while this request is on its way
        self.started = time.perf_counter()
        return self

    @property
    def needs_load(self) -> bool:
        return self.st.pool.needs_load(self.runner)

    async def loaded(self) -> None:
        """Return when the model can take the request (loading it on demand)."""
        if self.needs_load:
            await self.st.pool.ensure_loaded(self.runner)
        self.st.pool.touch(self.runner)

    def hand_over(self, status: int = 200):
        """The answer streams on after the route returns: it calls the returned function when it ends."""
        self._handed_over, self.status = True, status
        return self.release

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self.st.quota.finish(self.who, self.prompt_tokens + self.completion_tokens)
        self.runner.pending -= 1
        self.st.pool.touch(self.runner)  # idle time counts from the end of the last request
        m, name = self.st.metrics, self.runner.name
        m.in_flight.labels(name).dec()
        m.requests.labels(name, self.endpoint, self.protocol, str(self.status)).inc()
        seconds = time.perf_counter() - self.started
        m.latency.labels(name, self.endpoint).observe(seconds)
        self.st.activity.record(name, self.protocol, self.endpoint, self.status, seconds, self.tokens_out, self.ttft)
        self.st.usage.record(self.who.name, name, self.status, self.prompt_tokens, self.completion_tokens)
        if self.who.name:
            m.key_requests.labels(self.who.name, name, str(self.status)).inc()
            m.key_tokens.labels(self.who.name, name, "prompt").inc(self.prompt_tokens)
            m.key_tokens.labels(self.who.name, name, "completion").inc(self.completion_tokens)

    async def __aexit__(self, exc_type, exc, tb) -> None:
        if isinstance(exc, APIError):
            self.status = exc.status
            self.st.metrics.errors.labels(self.runner.name, exc.code).inc()
        if not self._handed_over:
            self.release()
