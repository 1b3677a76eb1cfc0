"""Tier 1: every error answer is in its API family's envelope, FastAPI's own 404/405/422/500 included."""
import logging
import os

import httpx
import pytest

from launcher.gateway.manage.manager import ModelManager
from launcher.gateway.proxy import Forwarder
from tests.fakes.harness import gateway
from tests.unit.test_multi_model import make_manager

CHAT = {"model": "fake", "messages": [{"role": "user", "content": "hi"}]}


def assert_openai(resp: httpx.Response, status: int, code: str) -> dict:
    body = resp.json()
    assert resp.status_code == status, resp.text
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["code"] == code and body["error"]["message"], body
    return body["error"]


def assert_management(resp: httpx.Response, status: int, code: str) -> dict:
    body = resp.json()
    assert resp.status_code == status, resp.text
    assert {"success", "message", "data", "error"} <= set(body) <= {"success", "message", "data", "error", "code",
                                                                    "param"}, body
    assert body["success"] is False and body["data"] is None and body["message"], body
    assert isinstance(body["error"], str) and body["error"] and body["code"] == code, body
    return body


@pytest.fixture
def gw(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "x.gguf").write_bytes(b"GGUF")
    with gateway(tmp_path, manager=make_manager(tmp_path, models)) as running:
        yield running


MANAGEMENT_CASES = [
    ("GET", "/api/v1/nothing-here", {}, 404, "not_found"),
    ("DELETE", "/api/v1/models", {}, 405, "method_not_allowed"),
    ("POST", "/api/v1/model/switch", {"content": b"{broken"}, 400, "invalid_request"),
    ("POST", "/api/v1/model/switch", {"content": b"[1, 2]"}, 400, "invalid_request"),
    ("POST", "/api/v1/model/switch", {"json": {"model_path": "../x.gguf"}}, 400, "invalid_request"),
    ("POST", "/api/v1/model/stop", {"json": {"model_name": "nope"}}, 404, "model_not_found"),
    ("GET", "/api/v1/model/status?model_name=nope", {}, 404, "model_not_found"),
    ("GET", "/api/v1/benchmark/status", {}, 400, "invalid_request"),  # FastAPI's 422: task_id missing
    ("GET", "/api/v1/benchmark/status?task_id=none", {}, 404, "not_found"),
    ("POST", "/api/v1/benchmark", {"json": {"model_path": "x.gguf", "n_gen": -1}}, 400, "invalid_request"),
    ("POST", "/api/v1/benchmark", {"json": {"model_path": "absent.gguf"}}, 404, "not_found"),
]


@pytest.mark.parametrize("method,path,kw,status,code", MANAGEMENT_CASES,
                         ids=[f"{m} {p} {s}" for m, p, _, s, _ in MANAGEMENT_CASES])
def test_management_errors_come_in_the_management_envelope(gw, method, path, kw, status, code):
    assert_management(httpx.request(method, gw.url + path, **kw), status, code)


def test_wrong_method_says_which_are_allowed(gw):
    resp = httpx.delete(gw.url + "/api/v1/models")
    assert resp.headers["allow"] == "GET"
    resp = httpx.get(gw.url + "/v1/chat/completions")
    assert_openai(resp, 405, "method_not_allowed")
    assert resp.headers["allow"] == "POST"


OPENAI_CASES = [
    ("GET", "/v1/nothing-here", {}, 404, "not_found"),
    ("GET", "/nothing-here", {}, 404, "not_found"),
    ("GET", "/v1/completions", {}, 405, "method_not_allowed"),
    ("POST", "/v1/completions", {"content": b"{broken"}, 400, "invalid_request"),
    ("POST", "/v1/chat/completions", {"json": CHAT | {"model": "gpt-4"}}, 404, "model_not_found"),
    ("POST", "/v1/chat/completions", {"json": CHAT | {"model": 7}}, 400, "invalid_request"),
]


@pytest.mark.parametrize("method,path,kw,status,code", OPENAI_CASES,
                         ids=[f"{m} {p} {s}" for m, p, _, s, _ in OPENAI_CASES])
def test_openai_errors_come_in_the_openai_envelope(gw, method, path, kw, status, code):
    assert_openai(httpx.request(method, gw.url + path, **kw), status, code)


def test_auth_errors_take_the_envelope_of_their_family(tmp_path):
    text = "model: fake.gguf\nmodel_alias: fake\nengine: {start_timeout: 20}\ngateway: {admin_key_env: ADMIN_E}\n"
    models = tmp_path / "models"
    models.mkdir()
    (models / "x.gguf").write_bytes(b"GGUF")
    with gateway(tmp_path, keys=("user",), text=text, manager=make_manager(tmp_path, models)) as gw:
        assert_openai(httpx.post(gw.url + "/v1/chat/completions", json=CHAT), 401, "invalid_api_key")
        os.environ.pop("ADMIN_E", None)  # keys but no admin key: management is off, and says so
        assert_management(httpx.get(gw.url + "/api/v1/models", headers={"X-Api-Key": "user"}), 403,
                          "management_disabled")


def test_a_bug_is_a_logged_500_in_the_familys_envelope(gw, monkeypatch, caplog):
    async def broken(*args, **kwargs):
        raise RuntimeError("a bug")
    monkeypatch.setattr(Forwarder, "complete", broken)
    monkeypatch.setattr(ModelManager, "list_files", lambda self: 1 / 0)
    with caplog.at_level(logging.ERROR, logger="launcher.gateway"):
        assert_openai(httpx.post(gw.url + "/v1/chat/completions", json=CHAT), 500, "internal_error")
        assert_management(httpx.get(gw.url + "/api/v1/models"), 500, "internal_error")
    logged = [r for r in caplog.records if r.exc_info]
    assert {type(r.exc_info[1]) for r in logged} == {RuntimeError, ZeroDivisionError}


def assert_anthropic(resp: httpx.Response, status: int, kind: str) -> dict:
    body = resp.json()
    assert resp.status_code == status, resp.text
    assert set(body) == {"type", "error"} and body["type"] == "error", body
    assert set(body["error"]) == {"type", "message"} and body["error"]["type"] == kind and body["error"]["message"]
    return body["error"]


MESSAGES = {"model": "fake", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC_CASES = [
    ("POST", "/v1/messages", {"content": b"{broken"}, 400, "invalid_request_error"),
    ("POST", "/v1/messages", {"json": MESSAGES | {"model": "claude-x"}}, 404, "not_found_error"),
    ("POST", "/v1/messages/count_tokens", {"json": MESSAGES | {"model": 7}}, 400, "invalid_request_error"),
    ("GET", "/v1/messages", {}, 405, "invalid_request_error"),
    ("GET", "/v1/messages/nothing-here", {}, 404, "not_found_error"),
]


@pytest.mark.parametrize("method,path,kw,status,kind", ANTHROPIC_CASES,
                         ids=[f"{m} {p} {s}" for m, p, _, s, _ in ANTHROPIC_CASES])
def test_anthropic_errors_come_in_anthropics_envelope(gw, method, path, kw, status, kind):
    assert_anthropic(httpx.request(method, gw.url + path, **kw), status, kind)


def test_an_anthropic_caller_without_its_key_gets_anthropics_authentication_error(tmp_path):
    with gateway(tmp_path, keys=("user",)) as gw:
        assert_anthropic(httpx.post(gw.url + "/v1/messages", json=MESSAGES), 401, "authentication_error")
        assert httpx.post(gw.url + "/v1/messages", json=MESSAGES, headers={"x-api-key": "user"}).status_code == 200


def test_engine_errors_on_anthropic_routes_take_anthropics_envelope(tmp_path):
    with gateway(tmp_path, ["--error-status", "400"]) as gw:
        assert_anthropic(httpx.post(gw.url + "/v1/messages", json=MESSAGES), 400, "invalid_request_error")
        assert_openai(httpx.post(gw.url + "/v1/chat/completions", json=CHAT), 400, "invalid_request")
