"""A fake llama-server for tier-1 tests: provokes on cue what a real engine cannot.

    python fake_engine.py --port P [--tokens N] [--delay S] [--truncate] [--crash-after N]
                          [--ignore-sigterm] [--load-seconds S] [--fail-start] [--error-status C]

It records what it saw at GET /stats (requests, bodies, streams cancelled by the client).
"""
import argparse
import asyncio
import json
import os
import signal
import sys
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--tokens", type=int, default=5)
p.add_argument("--delay", type=float, default=0.0)
p.add_argument("--truncate", action="store_true")
p.add_argument("--crash-after", type=int, default=-1)
p.add_argument("--ignore-sigterm", action="store_true")
p.add_argument("--load-seconds", type=float, default=0.0)
p.add_argument("--fail-start", action="store_true")
p.add_argument("--error-status", type=int, default=0)
p.add_argument("--slots", type=int, default=1)
args = p.parse_args()

if args.fail_start:
    print("fake: cannot load model: file is corrupt", flush=True)
    sys.exit(3)

app = FastAPI()
born = time.monotonic()
stats = {"requests": 0, "cancelled": 0, "completed": 0, "bodies": [], "pid": os.getpid()}


@app.get("/health")
async def health():
    if time.monotonic() - born < args.load_seconds:
        return JSONResponse({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}},
                            status_code=503)
    return {"status": "ok"}


@app.get("/stats")
async def get_stats():
    return stats


@app.get("/slots")
async def slots():
    busy = stats["requests"] - stats["cancelled"] - stats["completed"]
    return [{"id": i, "is_processing": i < busy} for i in range(args.slots)]


def chunk(i: int) -> bytes:
    data = {"choices": [{"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}],
            "object": "chat.completion.chunk", "model": "fake"}
    return b"data: " + json.dumps(data).encode() + b"\n\n"


async def handle(request: Request, kind: str):
    body = await request.json()
    stats["requests"] += 1
    stats["bodies"].append(body)
    if args.error_status:
        stats["completed"] += 1
        return JSONResponse({"error": {"code": args.error_status, "message": "fake engine refuses",
                                       "type": "invalid_request_error"}}, status_code=args.error_status)
    if not body.get("stream"):
        await asyncio.sleep(args.delay * args.tokens)
        stats["completed"] += 1
        text = "".join(f"t{i} " for i in range(args.tokens))
        return {"object": kind, "model": body.get("model"), "choices": [{"index": 0, "text": text,
                "message": {"role": "assistant", "content": text}, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": args.tokens, "total_tokens": 3 + args.tokens}}

    async def events():
        try:
            for i in range(args.tokens):
                if i == args.crash_after:
                    os.kill(os.getpid(), signal.SIGKILL)
                yield chunk(i)
                if args.delay:
                    await asyncio.sleep(args.delay)
            if not args.truncate:
                yield b"data: [DONE]\n\n"
            stats["completed"] += 1
        except asyncio.CancelledError:
            stats["cancelled"] += 1
            raise

    return StreamingResponse(events(), media_type="text/event-stream")


@app.post("/v1/chat/completions")
async def chat(request: Request):
    return await handle(request, "chat.completion")


@app.post("/v1/completions")
async def completions(request: Request):
    return await handle(request, "text_completion")


@app.post("/v1/embeddings")
async def embeddings(request: Request):
    body = await request.json()
    stats["requests"] += 1
    stats["completed"] += 1
    stats["bodies"].append(body)
    return {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]}


print(f"fake: listening on {args.port}", flush=True)
if args.ignore_sigterm:
    # uvicorn installs its own SIGTERM handler on the main thread; off it, it installs none.
    import threading
    signal.signal(signal.SIGTERM, lambda *_: print("fake: ignoring SIGTERM", flush=True))
    threading.Thread(target=uvicorn.run, args=(app,), daemon=True,
                     kwargs={"host": "127.0.0.1", "port": args.port, "log_level": "warning"}).start()
    while True:
        time.sleep(1)
uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
