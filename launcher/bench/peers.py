"""Peer gateways, run in front of the same engine as launcher's for `launch bench overhead --peer NAME`.

LiteLLM's proxy (`litellm[proxy]`) is installed on first use into a venv of its own under
`~/.cache/launcher/peers/litellm`: it is a benchmark's peer, not a dependency of launcher.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx

from ..errors import LauncherError, StartError
from ..net import free_ports
from ..testing.launched import wait_for

PEERS_DIR = Path.home() / ".cache" / "launcher" / "peers"
LITELLM_SPEC = "litellm[proxy]"
LITELLM_CONFIG = """model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {api_base}
      api_key: none
"""
# No network for the cost map here; no master key on a loopback benchmark (it refuses to start otherwise).
LITELLM_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
               "LITELLM_LOG": "ERROR"}


def litellm_binary(peers_dir: Path = PEERS_DIR) -> Path:
    """The `litellm` CLI of the peer venv, created and filled on first use."""
    venv = peers_dir / "litellm"
    cli = venv / "bin" / "litellm"
    if cli.exists():
        return cli
    print(f"installing {LITELLM_SPEC} into {venv} (once; a benchmark peer, not a launcher dependency)", flush=True)
    steps = [[sys.executable, "-m", "venv", str(venv)],
             [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", LITELLM_SPEC]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise LauncherError(f"could not install the LiteLLM peer ({' '.join(step)}):\n{done.stderr[-2000:]}")
    return cli


@contextlib.contextmanager
def litellm_proxy(engine_url: str, model: str, tmp: Path) -> Iterator[str]:
    """LiteLLM's proxy (default settings, one worker, loopback) in front of `engine_url`; yields its URL."""
    with litellm_process(engine_url, model, tmp) as (url, _):
        yield url


@contextlib.contextmanager
def litellm_process(engine_url: str, model: str, tmp: Path) -> Iterator[tuple[str, int]]:
    """As litellm_proxy; yields (URL, the proxy's pid)."""
    port = next(free_ports())
    cfg = tmp / f"litellm-{port}.yaml"
    cfg.write_text(LITELLM_CONFIG.format(model=model, api_base=engine_url.rstrip("/") + "/v1"))
    log = tmp / f"litellm-{port}.log"
    proc = subprocess.Popen([str(litellm_binary()), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port),
                             "--num_workers", "1"], env=dict(os.environ, **LITELLM_ENV), stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise StartError(f"LiteLLM's proxy exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(url + "/health/liveliness", timeout=2).status_code == 200
        return False
    try:
        if not wait_for(up, 180, 0.5):
            raise StartError(f"LiteLLM's proxy did not answer within 180 s:\n{log.read_text()[-3000:]}")
        yield url, proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
