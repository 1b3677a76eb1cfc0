"""Tier 1: engine kinds are a seam. A kind registered from this test module is accepted by the config,
checked by its own rule, planned with its own command, env and readiness path, sized by its own defaults,
and known to `prepare`; nothing else in launcher had to learn its name."""
import pytest

from launcher.binaries import Binaries
from launcher.devices import DeviceSet
from launcher.engines import EngineKind, Launch, engine_for, register, unregister
from launcher.errors import ConfigError
from launcher.memory.plan import settings_for
from launcher.plan import Host, make_plan
from launcher.validate import load_source
from tests.unit.test_memory_plan import qwen2_7b

TOY_BINARY = "/opt/toy/bin/toy-server"


class ToyServer(EngineKind):
    name = "toy-server"
    programs = ("toy-server",)
    health_path = "/ready"

    def launch(self, spec, slot, programs):
        argv = (programs.tool("toy-server"), "--weights", slot.model_path, "--listen", f"127.0.0.1:{slot.port}")
        return Launch(argv + spec.engine.extra_args, env=(("TOY_THREADS", str(slot.threads or 1)),),
                      notes=("toy: one sequence at a time",))

    def memory_defaults(self, spec, context_length):
        return dict(n_ctx=spec.params.n_ctx or 1024, n_seq=1, n_batch=64, n_ubatch=64, flash_attn=False)

    def document_problems(self, view, flavor, mode):
        if mode != "single":
            return [view.problem(("parallel", "mode"), f"{self.name} runs one process", value=mode)]
        return []


@pytest.fixture
def toy():
    register(ToyServer)
    yield ToyServer
    unregister(ToyServer.name)


def test_a_kind_registered_from_a_test_is_planned_with_its_own_command(toy):
    config = load_source("model: /models/toy.gguf\nmodel_alias: toy\nengine: {kind: toy-server, extra_args: [-v]}\n",
                         offline=True).config
    binaries = Binaries(tools=(("toy-server", TOY_BINARY),))
    plan = make_plan(config, DeviceSet("cpu"), binaries, iter(range(39000, 39100)), Host())
    (model,) = plan.models
    (proc,) = model.processes
    assert proc.argv == (TOY_BINARY, "--weights", "/models/toy.gguf", "--listen", "127.0.0.1:39000", "-v")
    assert ("TOY_THREADS", "1") in proc.env
    assert proc.health_url == "http://127.0.0.1:39000/ready"
    assert model.notes == ("toy: one sequence at a time",)
    assert isinstance(engine_for(config.models[0]), ToyServer)


def test_the_memory_plan_takes_the_kinds_defaults(toy):
    spec = load_source("model: /m.gguf\nengine: {kind: toy-server}\n", offline=True).config.models[0]
    s = settings_for(spec, qwen2_7b())
    assert (s.n_ctx, s.n_seq, s.n_batch, s.flash_attn) == (1024, 1, 64, False)


def test_the_kinds_own_check_reports_with_location(toy):
    with pytest.raises(ConfigError) as err:
        load_source("model: /m.gguf\nengine: {kind: toy-server}\nparallel: {mode: replicas, replicas: 2}\n",
                    offline=True)
    (problem,) = [p for p in err.value.problems if "runs one process" in p.message]
    assert problem.line == 3


def test_an_unregistered_kind_is_a_config_error_naming_the_registered_ones():
    with pytest.raises(ConfigError) as err:
        load_source("model: /m.gguf\nengine: {kind: toy-server}\n", offline=True)
    text = str(err.value)
    assert "toy-server" in text and "llama-server" in text and "llama-cpp-python" in text
