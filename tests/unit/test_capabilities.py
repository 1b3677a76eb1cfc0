"""Tier 1: capabilities — the matching rule (with the anyserve README's examples), the choice among
targets, and how KServe and OpenAI requests become a capability query and a target."""
import pytest

from launcher.capabilities import Candidate, choose, matches, parse_query
from launcher.errors import BadRequest, CapabilityNotFound, ConfigError, EngineUnavailable
from launcher.gateway.registry import Registry, RemoteReplica, parse_registration
from launcher.gateway.routing import Router, header_query, route_kserve
from launcher.plan.model import ModelPlan
from launcher.supervise.deployment import Deployment
from launcher.supervise.runner import Upstream
from launcher.supervise.states import ModelState, ProcessState
from launcher.validate import load_source

LLAMA_70B = {"type": "chat", "model": "llama-70b"}   # the README's two capabilities
EMBED = {"type": "embed"}


@pytest.mark.parametrize("capability, query, hit", [
    (LLAMA_70B, {"type": "chat"}, True),
    (LLAMA_70B, {"type": "chat", "model": "llama-70b"}, True),
    (LLAMA_70B, {"model": "llama-70b"}, True),
    (LLAMA_70B, {}, True),
    (LLAMA_70B, {"type": "embed"}, False),
    (LLAMA_70B, {"type": "chat", "model": "llama-7b"}, False),
    (LLAMA_70B, {"type": "chat", "lang": "zh"}, False),       # a key the capability lacks
    (EMBED, {"type": "embed"}, True),
    (EMBED, {"type": "embed", "model": "llama-70b"}, False),
    (EMBED, {"type": "chat"}, False),
    ({"type": "chat", "ctx": 4096}, {"ctx": "4096"}, True),   # queries from URLs and headers are text
    ({"type": "chat", "fast": True}, {"fast": "True"}, True),
])
def test_a_query_matches_when_every_key_is_there_with_an_equal_value(capability, query, hit):
    assert matches(capability, query) is hit


def test_header_queries():
    assert parse_query("type=chat,lang=zh") == {"type": "chat", "lang": "zh"}
    assert parse_query(" type = chat , ") == {"type": "chat"}
    with pytest.raises(ValueError, match="not key=value"):
        parse_query("type=chat,zh")
    assert header_query({"x-capability-query": '{"type": "echo"}', "x-capability": "lang=zh"}) == \
        {"type": "echo", "lang": "zh"}
    with pytest.raises(BadRequest, match="type=chat,lang=zh"):
        header_query({"x-capability": "chat"})
    with pytest.raises(BadRequest, match="JSON object"):
        header_query({"x-capability-query": "[1]"})


def test_the_least_loaded_ready_target_wins():
    a = Candidate("a", [LLAMA_70B], load=0.5)
    b = Candidate("b", [LLAMA_70B], load=0.1)
    down = Candidate("down", [LLAMA_70B], load=0.0, ready=False, loadable=False)
    cold = Candidate("cold", [LLAMA_70B], load=0.0, ready=False, loadable=True)
    other = Candidate("other", [EMBED], load=0.0)
    assert choose({"type": "chat"}, [a, b, down, cold, other]).target == "b"
    assert choose({"type": "chat"}, [down, cold]).target == "cold"   # loads on demand
    assert choose({"type": "chat"}, [down]) is None
    assert choose({"type": "rerank"}, [a, b, other]) is None


# --- a deployment: two models (one with its own capabilities), two copies of a worker, a replica -----

CONFIG = """models:
  - model: a.gguf
    model_alias: alpha
    capabilities:
      - {type: chat, lang: zh}
  - model: b.gguf
    model_alias: beta
    embeddings: true
"""


class FakeProcess:
    def __init__(self, capabilities):
        self.state, self.pid, self.health = ProcessState.READY, 1, {"capabilities": capabilities}


def deployment(worker_load=(0, 0)) -> tuple[Router, list]:
    cfg = load_source(CONFIG, "x.yaml", offline=True).config
    dep = Deployment(processes=None)
    runners = [dep.add(ModelPlan(s.name, (s.name,), "single", ()), s) for s in cfg.models]
    for r in runners:
        r.state = ModelState.READY
    workers = []
    for i, load in enumerate(worker_load):
        w = dep.add_worker(ModelPlan(f"w{i}", (f"w{i}",), "worker", ()), cfg.models[0])
        w.upstreams = [Upstream(f"http://w{i}", FakeProcess([{"type": "echo"}, {"type": "completion",
                                                                               "model": "gemma-py"}]), slots=4)]
        w.upstreams[0].in_flight = load
        w.state = ModelState.READY
        workers.append(w)
    registry = Registry()
    registry.register(RemoteReplica("far", "http://far:8080", [{"type": "translate"}, {"type": "chat",
                                                                                      "model": "big"}]))
    return Router(dep, registry), runners + workers


def test_models_have_implicit_capabilities_and_their_own():
    router, (alpha, beta, *_) = deployment()
    assert alpha.capabilities == [{"type": "chat", "model": "alpha"}, {"type": "completion", "model": "alpha"},
                                  {"type": "chat", "lang": "zh", "model": "alpha"}]
    assert {"type": "embed", "model": "beta"} in beta.capabilities  # embeddings: true


def test_kserve_names_route_to_models_then_types_then_model_keys():
    router, (alpha, beta, w0, w1) = deployment(worker_load=(3, 1))

    def target(name, parameters=None, headers=None):
        return route_kserve(router, name, parameters or {}, headers or {}).target

    assert target("alpha") is alpha and target("BETA") is beta          # a served model's name, as before
    assert target("echo") is w1                                          # a type: the least loaded worker
    assert target("chat", {"lang": "zh", "temperature": 0.2}) is alpha    # parameters add keys; sampling is not one
    assert target("echo", {"seconds": 3}) is w1                          # nor is a key no capability has
    assert target("embed") is beta
    assert target("completion", {"model": "beta"}) is beta
    assert target("chat", headers={"x-capability": "lang=zh"}) is alpha
    assert target("gemma-py") is w1                                      # a worker's `model`
    assert target("translate").name == "replica:far"                     # a registered replica
    assert target("big").name == "replica:far"                           # a model a replica serves
    with pytest.raises(CapabilityNotFound) as err:
        target("rerank")
    assert "available capabilities" in err.value.message and "{type=echo}" in err.value.message
    with pytest.raises(CapabilityNotFound):  # relayed to us: served here or nowhere (no loops)
        route_kserve(router, "translate", {}, {"x-launcher-forwarded": "other"})
    relayed = route_kserve(router, "ignored", {}, {"x-capability-query": '{"type": "echo"}'})
    assert relayed.target is w1 and relayed.query == {"type": "echo"}


def test_a_capability_whose_targets_are_down_is_unavailable_not_unknown():
    router, (alpha, beta, w0, w1) = deployment()
    w0.state = w1.state = ModelState.FAILED
    with pytest.raises(EngineUnavailable, match="w0, w1"):
        route_kserve(router, "echo", {}, {})
    alpha.state = ModelState.STOPPED  # on demand: routable, it loads
    assert route_kserve(router, "chat", {"lang": "zh"}, {}).target is alpha
    alpha.held = True                 # stopped through the management API: not loaded for a route
    with pytest.raises(EngineUnavailable):
        route_kserve(router, "chat", {"lang": "zh"}, {})


def test_registration_bodies_are_checked_and_a_replaced_entry_survives_the_old_stream():
    with pytest.raises(BadRequest, match="replica_id"):
        parse_registration({"endpoint": "http://x", "capabilities": []})
    with pytest.raises(BadRequest, match="endpoint"):
        parse_registration({"replica_id": "a", "endpoint": "x:1", "capabilities": []})
    with pytest.raises(BadRequest, match="capabilities"):
        parse_registration({"replica_id": "a", "endpoint": "http://x", "capabilities": [{"type": ["chat"]}]})
    registry = Registry()
    old = parse_registration({"replica_id": "a", "endpoint": "http://x/", "capabilities": [{"type": "chat"}]})
    new = parse_registration({"replica_id": "a", "endpoint": "http://x", "capabilities": [{"type": "echo"}]})
    registry.register(old)
    registry.register(new)
    assert not registry.unregister(old) and registry.replicas == (new,) and new.endpoint == "http://x"
    assert registry.unregister(new) and registry.replicas == ()


# --- config --------------------------------------------------------------------------------------

def test_workers_only_config_and_worker_defaults(tmp_path):
    (tmp_path / "pkg").mkdir()
    cfg = load_source("workers:\n  - app: examples.basic.app:app\n  - app: pkg.worker:create\n    factory: true\n"
                      "    processes: 2\n    path: [.., .]\n    env: {A: 1}\n", str(tmp_path / "c.yaml"),
                      offline=True).config
    assert cfg.models == ()
    basic, pkg = cfg.workers
    assert (basic.name, basic.processes, basic.threads, basic.path) == ("basic", 1, 4, (str(tmp_path),))
    assert (pkg.name, pkg.factory, pkg.processes, pkg.env) == ("pkg", True, 2, (("A", "1"),))
    assert pkg.path == (str(tmp_path.parent), str(tmp_path))


@pytest.mark.parametrize("text, message", [
    ("workers:\n  - app: a.b:app\n  - app: c.b:app\n", "worker name 'b' is also used by workers[0]"),
    ("model: m.gguf\nmodel_alias: echo\nworkers:\n  - {app: x:app, name: ECHO}\n", "also a model's name"),
    ("model: m.gguf\ncapabilities:\n  - {type: chat, model: other}\n", "names model 'other'"),
    ("workers:\n  - app: no_colon\n", "does not match"),
    ("{}\n", "missing required key 'model'"),
    ("model: m.gguf\ncapabilities:\n  - {type: [chat]}\n", "capabilities[0].type"),
])
def test_worker_and_capability_mistakes_are_config_errors(text, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_source(text, "x.yaml", offline=True)
