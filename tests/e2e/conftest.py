"""Tier 2: the real llama.cpp build, the real Gemma GGUF, the real `launch` CLI, the openai SDK."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from launcher.net import free_ports
from launcher.testing.launched import Launched

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.real


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.real)


@pytest.fixture(scope="session")
def built():
    """The cached CPU build (`make test` builds it first; a cache hit here costs nothing)."""
    from launcher.toolchain import ensure_build, make_request
    tree, _ = ensure_build(make_request("cpu"), quiet=True)
    return tree


@pytest.fixture(scope="session")
def gemma():
    from launcher.models.embedded import ensure
    return ensure("gemma3-270m")


@pytest.fixture
def start_launch(tmp_path, built, gemma):
    """start_launch(args, port, prefix=(), env=..., wait=True) -> Launched. After the test every launch is
    stopped (Ctrl-C) and no process it started may be left."""
    started: list[Launched] = []

    def start(args: list[str], port: int, *, prefix: tuple[str, ...] = (), env: dict | None = None,
              wait: bool = True) -> Launched:
        run = Launched(args, f"http://127.0.0.1:{port}", tmp_path / f"launch{len(started)}.log", env, str(ROOT),
                       prefix)
        started.append(run)
        if wait:
            run.wait_ready()
        return run

    yield start
    left = []
    for run in started:
        run.stop(timeout=20)
        left += run.leftovers()
        run.kill_leftovers()
    assert not left, f"processes outlived launch: {left}"


@pytest.fixture
def launch(tmp_path, start_launch):
    """launch(config_yaml_text, env=..., wait=True) -> Launched, on a free port (PORT in the text)."""
    count = iter(range(100))

    def start(text: str, env: dict | None = None, wait: bool = True) -> Launched:
        port = next(free_ports())
        cfg = tmp_path / f"config{next(count)}.yaml"
        cfg.write_text(text.replace("PORT", str(port)))
        return start_launch(["--config", str(cfg)], port, env=env, wait=wait)
    return start


GEMMA = """model: embedded:gemma3-270m
model_alias: gemma
n_ctx: 4096
n_parallel: 2
port: PORT
engine: {max_restarts: 3, restart_backoff: 0.2}
"""


@pytest.fixture
def browser():
    """Debian's chromium, headless, driven by Selenium through Debian's chromedriver."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
    from selenium.webdriver.chrome.service import Service
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and chromedriver, "Debian's chromium and chromium-driver are needed: make test installs them"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshots(request) -> Path:
    """build/screenshots/<test>/, emptied first: what the browser tests saw is kept after the run."""
    shots = ROOT / "build" / "screenshots" / request.node.name
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    return shots
