"""Tier 1: the gateway as the API server (/register, /registry, /route) and capability routing of OpenAI
requests, over fake engines."""
import json
import threading

import httpx

from launcher.testing.launched import wait_for
from tests.fakes.harness import gateway

KEY = {"authorization": "Bearer k1"}
REPLICA = {"replica_id": "far", "endpoint": "http://10.0.0.9:8080", "grpc_endpoint": "10.0.0.9:8001",
           "capabilities": [{"type": "translate", "lang": "zh"}]}
CHAT = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def registry(gw) -> list:
    return httpx.get(gw.url + "/registry", headers=KEY).json()["replicas"]


def test_register_needs_a_key_and_its_stream_holds_the_registration(tmp_path):
    with gateway(tmp_path, keys=("k1",), extra="capabilities:\n  - {type: chat, lang: zh}\n") as gw:
        assert httpx.post(gw.url + "/register", json=REPLICA).status_code == 401
        bad = httpx.post(gw.url + "/register", json={**REPLICA, "endpoint": "10.0.0.9"}, headers=KEY)
        assert bad.status_code == 400 and "endpoint" in bad.json()["error"]["message"]
        events, done = [], threading.Event()

        def hold():
            with httpx.stream("POST", gw.url + "/register", json=REPLICA, headers=KEY, timeout=30) as resp:
                for line in resp.iter_lines():
                    if line.startswith("event: "):
                        events.append(line[7:])
                    if "heartbeat" in events or done.is_set():
                        break  # leaving the block drops the connection
        holder = threading.Thread(target=hold)
        holder.start()
        assert wait_for(lambda: registry(gw), 10)
        assert registry(gw)[0]["capabilities"] == REPLICA["capabilities"]
        route = httpx.get(gw.url + "/route?type=translate&lang=zh", headers=KEY).json()
        assert route["endpoint"] == "http://10.0.0.9:8080" and route["replica_id"] == "far"
        local = httpx.get(gw.url + "/route?type=chat&lang=zh", headers=KEY).json()
        # this gateway, as its config announces it (the harness listens on another port than the config's)
        assert local["endpoint"] == "http://127.0.0.1:8080" and local["replica_id"].endswith(":8080")
        assert {"type": "chat", "lang": "zh", "model": "fake"} in local["capabilities"]
        missing = httpx.get(gw.url + "/route?type=rerank", headers=KEY)
        assert missing.status_code == 404 and "{type=translate, lang=zh}" in missing.json()["error"]["message"]
        holder.join(15)
        assert events[:2] == ["registered", "heartbeat"]
        assert wait_for(lambda: registry(gw) == [], 5), "a dropped registration stream must unregister"
        assert httpx.get(gw.url + "/route?type=translate", headers=KEY).status_code == 404


def test_openai_requests_may_route_by_capability(tmp_path):
    with gateway(tmp_path, extra="capabilities:\n  - {type: chat, lang: zh}\n") as gw:
        resp = httpx.post(gw.url + "/v1/chat/completions", json=CHAT, headers={"x-capability": "lang=zh"})
        assert resp.status_code == 200 and resp.json()["model"] == "fake"
        resp = httpx.post(gw.url + "/v1/chat/completions", json={**CHAT, "model": "ignored"},
                          headers={"x-capability": "type=chat,lang=fr"})
        error = resp.json()["error"]
        assert resp.status_code == 404 and error["code"] == "capability_not_found"
        assert "{type=chat, lang=zh, model=fake}" in error["message"]
        resp = httpx.post(gw.url + "/v1/embeddings", json={"input": "x"}, headers={"x-capability": "lang=zh"})
        assert resp.status_code == 404  # the model declares no {type: embed}
        resp = httpx.post(gw.url + "/v1/chat/completions", json=CHAT, headers={"x-capability": "zh"})
        assert resp.status_code == 400 and "type=chat,lang=zh" in json.loads(resp.text)["error"]["message"]
