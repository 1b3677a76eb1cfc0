"""A build is done only when its llama-server has loaded a GGUF and answered one completion."""
from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..children import terminate
from ..errors import BuildError
from ..net import free_ports


def smoke_test(server: Path, model: Path, log: Path, timeout: float = 180.0) -> str:
    """Start `server` on a free port, ask for 8 greedy tokens, stop it. Returns the text."""
    port = next(free_ports())
    argv = [str(server), "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
            "--ctx-size", "512", "--parallel", "1"]
    with open(log, "a") as fh:
        fh.write("$ " + " ".join(argv) + "\n")
        fh.flush()
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT)
        try:
            _wait_healthy(proc, port, timeout, log)
            body = json.dumps({"prompt": "The capital of France is", "n_predict": 8, "temperature": 0}).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/completion", body,
                                         {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                text = json.loads(resp.read())["content"]
        except (OSError, ValueError, KeyError) as exc:
            raise BuildError(f"smoke test failed: {server.name} did not answer a completion ({exc})",
                             _tail(log), str(log)) from exc
        finally:
            terminate(proc)
    if not text.strip():
        raise BuildError("smoke test failed: the completion was empty", _tail(log), str(log))
    return text


def _wait_healthy(proc: subprocess.Popen, port: int, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            # -4 is SIGILL: the classic sign of a native build using instructions this CPU lacks.
            why = " (SIGILL: the build uses CPU instructions this host cannot run; try build.native: false)" \
                if code == -4 else ""
            raise BuildError(f"smoke test failed: llama-server exited with {code}{why}", _tail(log), str(log))
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise BuildError(f"smoke test failed: llama-server not healthy after {timeout:.0f}s", _tail(log), str(log))


def _tail(log: Path, n: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""
