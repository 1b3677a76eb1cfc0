"""Tier 1: security over fake engines: every route of every family refuses a caller without its key (the
routes are enumerated from the app and the gRPC service, so a new one cannot be forgotten), the admin key
is separate, no path or model name reaches outside the models folder, keys never appear in logs, answers
or plans, CORS preflights work with keys, and every engine and RPC server binds to loopback unless the
config says otherwise."""
from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import quote

import grpc
import httpx
import pytest
from fastapi import routing
from starlette.routing import Mount

from launcher.plan.planner import LOOPBACK
from launcher.plan.render import to_json, to_shell
from launcher.protocols.kserve import service
from tests.fakes.harness import PORTS, gateway
from tests.fakes.management import make_manager, models_folder
from tests.unit.test_plan_golden import CASES, PLAN_CONFIGS, ROOT, assumed, plan_of

USER, ADMIN = "sk-user-4f1d", "sk-admin-9c2e"
# The only routes a caller without a key may use: probes and the API's own description.
PUBLIC = {"/health", "/ready", "/v2/health/live", "/v2/health/ready",
          "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/ui"}
PUBLIC_FILES = {"/ui": "/ui/console.js"}  # static files of the console: no data in them
PUBLIC |= set(PUBLIC_FILES.values())
ADMIN_ONLY = ("/api/v1/", "/register",  # changing models or diverting traffic: the admin key
              "/slots", "/upstream/")  # other callers' prompts, the engine's raw routes: the admin key too
PATH_VALUES = {"request_id": "1", "name": "fake", "version": "1", "model": "fake", "path": "health"}
GRPC_PUBLIC = {"ServerLive", "ServerReady"}


@pytest.fixture
def secured(tmp_path, monkeypatch):
    monkeypatch.setenv("SEC_ADMIN", ADMIN)
    port = next(PORTS)
    extra = (f"gateway: {{admin_key_env: SEC_ADMIN, grpc_port: {port}, "
             "cors_origins: ['https://app.example']}\n")
    with gateway(tmp_path, ["--tokens", "2"], keys=(USER,), extra=extra,
                 manager=make_manager(tmp_path, models_folder(tmp_path))) as gw:
        yield gw, f"127.0.0.1:{port}"


def every_route(app) -> list[tuple[str, str]]:
    """(method, path) of every HTTP route, routers included (FastAPI >= 0.16x wraps them)."""
    routes = routing.iter_route_contexts(app.routes) if hasattr(routing, "iter_route_contexts") else app.routes
    out = []
    for route in routes:
        if isinstance(getattr(route, "original_route", route), Mount):
            assert route.path in PUBLIC_FILES, f"a mount at {route.path}: teach this test about it"
            out.append(("GET", PUBLIC_FILES[route.path]))
            continue
        assert route.methods, f"a route without methods ({route.path}): teach this test about it"
        out += [(method, route.path) for method in sorted(set(route.methods) - {"HEAD"})]
    return out


def call(url: str, method: str, path: str, key: str | None) -> int:
    """The status a caller with `key` gets; the body is not read (some answers are endless streams)."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    target = url + re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PATH_VALUES[m.group(1)], path)  # {path:path} too
    with httpx.stream(method, target, headers=headers, json={} if method == "POST" else None, timeout=30) as resp:
        return resp.status_code


def test_every_http_route_refuses_a_caller_without_its_key(secured):
    gw, _ = secured
    routes = every_route(gw.app)
    assert len(routes) > 30 and ("POST", "/v1/chat/completions") in routes
    for method, path in routes:
        anonymous, user, admin = (call(gw.url, method, path, k) for k in (None, USER, ADMIN))
        where = f"{method} {path}: anonymous {anonymous}, user key {user}, admin key {admin}"
        if path in PUBLIC:
            assert anonymous not in (401, 403), where
        elif path.startswith(ADMIN_ONLY):
            assert anonymous == 401 and user == 401 and admin not in (401, 403), where
        else:
            assert anonymous == 401 and user not in (401, 403), where
            assert admin == 401, where  # the admin key manages; it does not serve (the keys are separate)
        if path not in PUBLIC:
            assert call(gw.url, method, path, "sk-wrong") == 401, where


def test_every_grpc_method_refuses_a_caller_without_its_key(secured):
    _, address = secured
    assert len(service.METHODS) >= 7
    with grpc.insecure_channel(address) as channel:
        for name, (request_type, answer_type, streaming) in service.METHODS.items():
            fields = request_type.DESCRIPTOR.fields_by_name
            request = request_type(**{k: "fake" for k in ("name", "model_name") if k in fields})
            make = channel.stream_stream if streaming else channel.unary_unary
            rpc = make(service.path(name), request_serializer=request_type.SerializeToString,
                       response_deserializer=answer_type.FromString)

            def status(key: str | None) -> grpc.StatusCode:
                metadata = [("authorization", f"Bearer {key}")] if key else []
                try:
                    list(rpc(iter([request]), metadata=metadata, timeout=30)) if streaming else \
                        rpc(request, metadata=metadata, timeout=30)
                except grpc.RpcError as err:
                    return err.code()
                return grpc.StatusCode.OK
            for key in (None, "sk-wrong", ADMIN):
                expected = grpc.StatusCode.OK if name in GRPC_PUBLIC else grpc.StatusCode.UNAUTHENTICATED
                assert status(key) == expected, (name, key)
            assert status(USER) != grpc.StatusCode.UNAUTHENTICATED, name


TRAVERSALS = ["../secret.gguf", "../../../../etc/passwd", "/etc/passwd", "sub/../../secret.gguf",
              "..%2Fsecret.gguf", "....//secret.gguf", "models/../secret.gguf", "tiny.gguf\x00.txt"]


@pytest.mark.parametrize("bad", TRAVERSALS)
def test_no_path_or_model_name_reaches_outside_the_models_folder(secured, bad):
    gw, _ = secured
    admin = {"authorization": f"Bearer {ADMIN}"}
    user = {"authorization": f"Bearer {USER}"}
    for path, body in [("/api/v1/model/switch", {"model_path": bad}), ("/api/v1/benchmark", {"model_path": bad}),
                       ("/api/v1/model/stop", {"model_name": bad})]:
        resp = httpx.post(gw.url + path, json=body, headers=admin)
        assert resp.status_code in (400, 404) and resp.json()["success"] is False, (path, bad, resp.text)
        assert "GGUF" not in resp.text and "root:" not in resp.text
    status = httpx.get(gw.url + "/api/v1/model/status", params={"model_name": bad}, headers=admin)
    assert status.status_code in (400, 404), status.text
    chat = httpx.post(gw.url + "/v1/chat/completions", headers=user,
                      json={"model": bad, "messages": [{"role": "user", "content": "hi"}]})
    assert chat.status_code in (400, 404) and chat.json()["error"]["code"] in ("model_not_found", "invalid_request")
    ready = httpx.get(gw.url + "/v2/models/" + quote(bad, safe="") + "/ready", headers=user)
    assert ready.status_code in (400, 404) and "error" in ready.json(), ready.text
    assert [r.name for r in gw.deployment.models] == ["fake"]  # nothing was switched in or started


def test_keys_never_reach_logs_answers_or_metrics(secured, caplog):
    gw, _ = secured
    caplog.set_level(logging.DEBUG)
    admin = {"authorization": f"Bearer {ADMIN}"}
    wrong = "sk-guess-77aa"
    httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {USER}"},
               json={"model": "fake", "messages": [{"role": "user", "content": "hi"}]})
    httpx.post(gw.url + "/v1/completions", headers={"x-api-key": wrong}, json={"model": "fake", "prompt": "x"})
    httpx.post(gw.url + "/api/v1/model/switch", headers=admin, json={"model_path": "tiny.gguf"})
    answers = [httpx.get(gw.url + p, headers=admin).text for p in ("/api/v1/model/status", "/api/v1/models")]
    answers += [httpx.get(gw.url + p, headers={"authorization": f"Bearer {USER}"}).text
                for p in ("/metrics", "/registry", "/openapi.json", "/v1/models", "/v2")]
    seen = "\n".join(answers) + caplog.text
    for secret in (USER, ADMIN, wrong):
        assert secret not in seen


def test_keys_in_the_config_never_reach_a_plan(tmp_path):
    cfg_path = tmp_path / "c.yaml"
    shipped = (ROOT / "configs" / "config_gemma3_270m_cpu.yaml").read_text()
    assert "\ngateway:\n" in shipped
    cfg_path.write_text(shipped.replace("\ngateway:\n", "\ngateway:\n  api_keys: [sk-in-config-5e5e]\n", 1))
    cfg, plan = plan_of(cfg_path, "cpu")
    assert cfg.gateway.api_keys == ("sk-in-config-5e5e",)
    assert "sk-in-config-5e5e" not in to_shell(plan) + to_json(plan) + repr(cfg)


def _plans():
    for name, assume in sorted(CASES.items()):
        yield name, ROOT / "configs" / f"{name}.yaml", assume
    for path in PLAN_CONFIGS:
        yield path.stem, path, assumed(path)


@pytest.mark.parametrize("name,path,assume", list(_plans()), ids=[n for n, _, _ in _plans()])
def test_engines_and_rpc_servers_bind_to_loopback_unless_configured(name, path: Path, assume):
    cfg, plan = plan_of(path, assume)
    specs = {s.name: s for s in cfg.models}
    for model in plan.models + plan.workers:
        configured = set()
        if model.name in specs and specs[model.name].parallel.rpc_host:
            configured.add(specs[model.name].parallel.rpc_host)
        if model.name in specs and specs[model.name].parallel.hostfile:
            configured.add("{host}")  # across hosts a rank listens on its own address, as the hostfile says
        for proc in model.processes + model.ranks:
            assert proc.host in (None, LOOPBACK) or proc.host in configured, (name, proc.name, proc.host)
            if proc.role == "mpirun" or "--config" in proc.argv:
                continue  # the Ascend fork: its config file says where it listens (checked below)
            assert "--host" in proc.argv, (name, proc.name, proc.argv)
            bound = proc.argv[proc.argv.index("--host") + 1]
            assert bound == LOOPBACK or bound in configured, (name, proc.name, proc.argv)
        assert all(httpx.URL(u).host == LOOPBACK for u in model.upstreams), (name, model.upstreams)
        for file in model.files:
            if file.kind == "fork-config":
                assert f"hostname: {LOOPBACK}" in file.content, (name, file.path)


def test_cors_preflight_needs_no_key_and_errors_carry_cors_headers(secured):
    gw, _ = secured
    origin = {"Origin": "https://app.example"}
    for path in ("/v1/chat/completions", "/v2/models/fake/infer", "/api/v1/model/switch"):
        pre = httpx.options(gw.url + path, headers=origin | {"Access-Control-Request-Method": "POST",
                                                             "Access-Control-Request-Headers": "authorization"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://app.example"
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
    refused = httpx.post(gw.url + "/v1/chat/completions", headers=origin, json={})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "https://app.example"
    too_big = httpx.post(gw.url + "/v1/chat/completions", headers=origin, content=b"x" * (33 << 20))
    assert too_big.status_code == 413 and too_big.headers.get("access-control-allow-origin") == "https://app.example"
    evil = httpx.options(gw.url + "/v1/chat/completions", headers={"Origin": "https://evil.example",
                                                                   "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in evil.headers


def test_without_cors_origins_no_origin_is_allowed(tmp_path):
    with gateway(tmp_path) as gw:
        pre = httpx.options(gw.url + "/v1/chat/completions", headers={"Origin": "https://app.example",
                                                                      "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in pre.headers


def test_with_keys_but_no_admin_key_management_is_off_not_open(tmp_path):
    with gateway(tmp_path, keys=(USER,), manager=make_manager(tmp_path, models_folder(tmp_path))) as gw:
        for key in (USER, None):
            headers = {"authorization": f"Bearer {key}"} if key else {}
            resp = httpx.get(gw.url + "/api/v1/models", headers=headers)
            assert resp.status_code == 403 and "admin_key_env" in resp.json()["error"]
