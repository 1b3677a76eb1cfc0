"""Tier 1: request capture (gateway.capture): bodies and assembled streams, redaction, the ring's bounds."""
from __future__ import annotations

import httpx

from tests.fakes.harness import gateway

TEXT = """model: fake.gguf
model_alias: fake
engine: {max_restarts: 3, restart_backoff: 0.1, start_timeout: 20}
gateway:
  admin_key_env: CAP_ADMIN
  capture: {requests: 3, redact: [user]}
  keys:
    - {name: alice, key_env: CAP_ALICE}
"""


def test_requests_are_kept_redacted_with_streams_assembled(tmp_path, monkeypatch):
    monkeypatch.setenv("CAP_ADMIN", "adm")
    monkeypatch.setenv("CAP_ALICE", "alice-secret")
    admin = {"Authorization": "Bearer adm"}
    with gateway(tmp_path, ["--tokens", "3"], text=TEXT) as gw:
        headers = {"Authorization": "Bearer alice-secret"}
        body = {"model": "fake", "user": "someone@example.com", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(gw.url + "/v1/chat/completions", headers=headers, json=body | {"stream": True}).status_code == 200
        listed = httpx.get(gw.url + "/api/v1/requests", headers=admin).json()["data"]
        assert [(r["path"], r["key"], r["model"], r["status"]) for r in listed] == \
            [("/v1/chat/completions", "alice", "fake", 200)]
        whole = httpx.get(gw.url + f"/api/v1/requests/{listed[0]['id']}", headers=admin).json()["data"]
        assert whole["headers"]["authorization"] == "[redacted]" and whole["request"]["user"] == "[redacted]"
        assert whole["answer"].count("data: ") == 5 and whole["answer"].rstrip().endswith("data: [DONE]")
        dumped = httpx.get(gw.url + "/api/v1/requests/" + str(listed[0]["id"]), headers=admin).text
        assert "alice-secret" not in dumped and "someone@example.com" not in dumped
        for _ in range(4):   # the ring keeps 3
            httpx.post(gw.url + "/v2/models/fake/infer", headers=headers, json={"inputs": [
                {"name": "prompt", "datatype": "BYTES", "shape": [1], "data": ["hi"]}]})
        listed = httpx.get(gw.url + "/api/v1/requests", headers=admin).json()["data"]
        assert len(listed) == 3 and all(r["path"] == "/v2/models/fake/infer" and r["model"] == "fake" for r in listed)
        assert httpx.get(gw.url + "/api/v1/requests/1", headers=admin).status_code == 404   # left the ring


def test_capture_is_off_unless_configured(tmp_path):
    with gateway(tmp_path, ["--tokens", "2"]) as gw:
        assert httpx.get(gw.url + "/api/v1/requests").status_code == 404


def test_no_output_of_the_gateway_carries_a_secret(tmp_path, monkeypatch, caplog):
    """Keys and the `redact` fields, after accepted, refused (401, 403, 429) and streamed requests: not in the
    logs, metrics, captured requests, usage, console events, registry, OpenAPI or any answer."""
    import logging
    import threading

    from tests.fakes.sse import follow
    secrets = ("alice-secret", "adm-secret", "wrong-secret", "someone@example.com")
    monkeypatch.setenv("CAP_ADMIN", "adm-secret")
    monkeypatch.setenv("CAP_ALICE", "alice-secret")
    caplog.set_level(logging.DEBUG)
    text = TEXT.replace("{name: alice, key_env: CAP_ALICE}", "{name: alice, key_env: CAP_ALICE, models: [fak*], "
                                                             "requests_per_minute: 2}")
    outputs: list[str] = []
    with gateway(tmp_path, ["--tokens", "3"], text=text) as gw:
        admin = {"Authorization": "Bearer adm-secret"}
        events, stop = [], threading.Event()
        reader = threading.Thread(target=follow, args=(gw.url + "/api/events", events, stop, None, admin), daemon=True)
        reader.start()
        body = {"model": "fake", "user": "someone@example.com", "messages": [{"role": "user", "content": "hi"}]}
        for key, extra in (("alice-secret", {"stream": True}), ("alice-secret", {}), ("alice-secret", {}),
                           ("wrong-secret", {}), ("adm-secret", {"model": "nope"})):
            r = httpx.post(gw.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                           json=body | extra)
            outputs.append(f"{r.status_code} {r.headers} {r.text}")
        assert [o.split()[0] for o in outputs] == ["200", "200", "429", "401", "404"]
        for path in ("/metrics", "/api/v1/requests", "/api/v1/usage", "/registry", "/openapi.json", "/v1/models",
                     "/logs"):
            outputs.append(httpx.get(gw.url + path, headers=admin).text)
        for r in httpx.get(gw.url + "/api/v1/requests", headers=admin).json()["data"]:
            outputs.append(httpx.get(gw.url + f"/api/v1/requests/{r['id']}", headers=admin).text)
        stop.set()
        reader.join(10)
    outputs += [str(events), caplog.text] + [p.read_text(errors="replace") for p in tmp_path.rglob("*.log")]
    assert len(outputs) > 15 and any("alice" in o for o in outputs)
    for secret in secrets:
        assert not [o[:200] for o in outputs if secret in o], secret
