"""Tier 2: a server a team shares (issue 23), against real Gemma served twice (alpha, beta) by `launch`.

Two named keys with different scopes and limits: the openai SDK sees 403 outside a key's models and 429 with
OpenAI's rate-limit headers over its limit; `launch usage` shows, per key, exactly the tokens the engine
reported in the answers; a restart keeps them. The console, in Debian's chromium, opens a captured request
(the key redacted) and draws the usage chart with both keys. Screenshots are kept in build/screenshots/."""
from __future__ import annotations

import json
import subprocess
import sys

import httpx
import openai
import pytest

from launcher.testing.launched import wait_for

from .conftest import ROOT

RESEARCH, INTERNS, ADMIN = "sk-research-0123456789", "sk-interns-9876543210", "sk-team-admin-55555"
CONFIG = """port: PORT
gateway:
  admin_key_env: TEAM_ADMIN
  keys:
    - {name: research, key_env: RESEARCH_KEY, models: ["alpha*"], tokens_per_minute: 100000, max_concurrent: 2}
    - {name: interns, key_env: INTERNS_KEY, models: [beta], requests_per_minute: 2}
  usage_db: USAGE
  capture: {requests: 20, redact: [user]}
models:
  - {model: embedded:gemma3-270m, model_alias: alpha, n_ctx: 1024}
  - {model: embedded:gemma3-270m, model_alias: beta, n_ctx: 1024}
"""
ENV = {"RESEARCH_KEY": RESEARCH, "INTERNS_KEY": INTERNS, "TEAM_ADMIN": ADMIN}
HELLO = [{"role": "user", "content": "Name one colour."}]


def client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0)   # a retry would hide the 429


def usage_of(cfg) -> dict[str, dict]:
    out = subprocess.run([sys.executable, "-m", "launcher", "usage", "--config", str(cfg), "--format", "json"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    totals: dict[str, dict] = {}
    for row in json.loads(out):
        t = totals.setdefault(row["key"], {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "errors": 0})
        for field in t:
            t[field] += row[field]
    return totals


def test_two_named_keys_limits_usage_capture_and_the_console(start_launch, browser, screenshots, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from launcher.net import free_ports
    port = next(free_ports())
    cfg = tmp_path / "team.yaml"
    cfg.write_text(CONFIG.replace("PORT", str(port)).replace("USAGE", str(tmp_path / "usage.sqlite")))
    run = start_launch(["--config", str(cfg)], port, env=ENV)
    research, interns = client(run.url, RESEARCH), client(run.url, INTERNS)
    reported = {"research": [0, 0], "interns": [0, 0]}

    def count(key: str, usage) -> None:
        reported[key][0] += usage.prompt_tokens
        reported[key][1] += usage.completion_tokens

    # scopes: each key sees and uses only its own models
    assert [m.id for m in research.models.list()] == ["alpha"]
    assert [m.id for m in interns.models.list()] == ["beta"]
    with pytest.raises(openai.PermissionDeniedError):
        research.chat.completions.create(model="beta", messages=HELLO, max_tokens=4)

    count("research", research.chat.completions.create(model="alpha", messages=HELLO, max_tokens=8).usage)
    stream = research.chat.completions.create(model="alpha", messages=HELLO, max_tokens=8, stream=True,
                                              stream_options={"include_usage": True})
    last = [chunk for chunk in stream][-1]
    count("research", last.usage)                       # a stream's tokens, from the engine's final chunk
    for _ in range(2):
        count("interns", interns.chat.completions.create(model="beta", messages=HELLO, max_tokens=8).usage)
    with pytest.raises(openai.RateLimitError) as over:
        interns.chat.completions.create(model="beta", messages=HELLO, max_tokens=8, user="intern-7@example.com")
    headers = over.value.response.headers
    assert headers["x-ratelimit-limit-requests"] == "2" and headers["x-ratelimit-remaining-requests"] == "0"
    assert int(headers["retry-after"]) >= 1 and headers["x-ratelimit-reset-requests"].endswith("s")
    assert over.value.code == "rate_limit_exceeded" and INTERNS not in over.value.message

    expected = {key: {"prompt_tokens": p, "completion_tokens": c} for key, (p, c) in reported.items()}
    assert all(c > 0 for _, c in reported.values()), reported

    def tokens(totals: dict) -> dict:
        return {k: {f: v[f] for f in ("prompt_tokens", "completion_tokens")} for k, v in totals.items() if k in reported}
    assert wait_for(lambda: tokens(usage_of(cfg)) == expected, 15), (usage_of(cfg), expected)  # written every 2 s
    before = usage_of(cfg)
    assert before["research"]["requests"] == 3 and before["research"]["errors"] == 1     # the 403 counts
    assert before["interns"]["requests"] == 3 and before["interns"]["errors"] == 1       # the 429 counts

    # the console: the operator opens it with the admin key
    wait = WebDriverWait(browser, 30)
    browser.get(run.url + "/ui#requests")
    wait.until(lambda d: d.find_element(By.ID, "key-form").is_displayed())
    browser.find_element(By.ID, "key-input").send_keys(ADMIN)
    browser.find_element(By.ID, "key-save").click()
    browser.get(run.url + "/ui#requests")     # the key stays for the session; the panel loads with it
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#request-rows tr")) >= 6)
    first = browser.find_element(By.CSS_SELECTOR, "#request-rows tr")   # the newest: the refused one
    assert "interns" in first.text and "429" in first.text
    first.click()
    wait.until(lambda d: "Name one colour" in d.find_element(By.ID, "request-detail").text)
    detail = browser.find_element(By.ID, "request-detail").text
    assert '"authorization": "[redacted]"' in detail and INTERNS not in detail and RESEARCH not in detail
    assert '"user": "[redacted]"' in detail and "intern-7@example.com" not in detail   # gateway.capture.redact
    browser.save_screenshot(str(screenshots / "1-captured-request.png"))

    browser.find_element(By.CSS_SELECTOR, 'a[data-panel="usage"]').click()
    wait.until(lambda d: {"research", "interns"} <= {e.get_attribute("data-series") for e in
                                                     d.find_elements(By.CSS_SELECTOR, "#legend-by-key span")})
    bars = {e.get_attribute("data-series") for e in browser.find_elements(By.CSS_SELECTOR, "#usage-by-key rect.bar")}
    assert {"research", "interns"} <= bars
    models = {e.get_attribute("data-series") for e in browser.find_elements(By.CSS_SELECTOR, "#legend-by-model span")}
    assert {"alpha", "beta"} <= models
    browser.save_screenshot(str(screenshots / "2-usage-chart.png"))

    browser.find_element(By.CSS_SELECTOR, 'a[data-panel="models"]').click()   # each row's sparklines
    trend = 'tr[data-model="alpha"] td.trend'
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, trend + " polyline.tokens")
               and "top 0;" not in d.find_element(By.CSS_SELECTOR, trend).get_attribute("title"))
    browser.save_screenshot(str(screenshots / "3-model-sparklines.png"))

    # a restart keeps the counts: launch usage, and the running gateway's API, show the same totals
    run.stop()
    assert usage_of(cfg) == before
    again = start_launch(["--config", str(cfg)], port, env=ENV)
    rows = httpx.get(again.url + "/api/v1/usage", headers={"Authorization": f"Bearer {ADMIN}"}).json()["data"]
    assert sum(r["completion_tokens"] for r in rows if r["key"] == "research") == reported["research"][1]
    assert sorted(p.name for p in screenshots.iterdir()) == ["1-captured-request.png", "2-usage-chart.png",
                                                             "3-model-sparklines.png"]
