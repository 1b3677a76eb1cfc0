"""Reading a server-sent event stream in a test thread: (event, data) pairs until told to stop."""
from __future__ import annotations

import json
import threading

import httpx


def follow(url: str, events: list, stop: threading.Event, only: str | None = None, headers: dict | None = None) -> None:
    """Append (event, decoded data) to `events` (data alone when `only` names the one event wanted) until
    `stop` is set; a stream quiet for 5 s is opened again."""
    while not stop.is_set():
        with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(30, read=5)) as resp:
            kind = None
            try:
                for line in resp.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and (only is None or kind == only):
                        data = json.loads(line[6:])
                        events.append(data if only else (kind, data))
                    if stop.is_set():
                        return
            except httpx.ReadTimeout:
                continue
