"""Recent requests, for the console: one record per answered request (model, protocol, endpoint, status,
duration, and for streams the tokens sent and the time to the first one), kept in a short history and
fanned out to `/api/events` readers. Recorded when a request is released (dispatch.py)."""
from __future__ import annotations

import time

from ..supervise.fanout import Fanout

KEEP = 200


class Activity(Fanout[dict]):
    def __init__(self, keep: int = KEEP):
        super().__init__(keep, 500)

    def record(self, model: str, protocol: str, endpoint: str, status: int, seconds: float,
               tokens_out: int | None = None, ttft: float | None = None) -> None:
        self.publish({"at": time.time(), "model": model, "protocol": protocol, "endpoint": endpoint,
                      "status": status, "duration_ms": round(seconds * 1000, 1), "tokens_out": tokens_out,
                      "ttft_ms": round(ttft * 1000, 1) if ttft is not None else None,
                      "tokens_per_s": round(tokens_out / (seconds - ttft), 1)
                      if tokens_out and ttft is not None and seconds > ttft and tokens_out > 1 else None})
