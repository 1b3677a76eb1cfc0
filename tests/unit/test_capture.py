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
