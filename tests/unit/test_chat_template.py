"""Tier 1: a GGUF without a chat template gets its architecture's llama-server built-in one (the plan says
which); one launcher knows none for is a warning (llama-server would use ChatML); a config's own wins."""
from launcher.devices import parse_assumed
from launcher.plan import Binaries, Host, make_plan
from launcher.validate import load_source
from tests.unit.gguf_fixture import write_tiny_gguf


def plan_of(text: str):
    result = load_source(text, "/configs/x.yaml")
    plan = make_plan(result.config, parse_assumed("cpu"), Binaries((("llama-server", "/bin/llama-server"),)),
                     iter(range(31000, 31010)), Host())
    return result, plan.models[0]


def test_gemma_without_a_template_gets_the_builtin_gemma_one(tmp_path):
    model = write_tiny_gguf(tmp_path / "g.gguf", arch="gemma3")
    result, plan = plan_of(f"model: {model}\n")
    argv = plan.processes[0].argv
    assert argv[argv.index("--chat-template") + 1] == "gemma"
    assert "chat template: gemma (llama-server's built-in for gemma3; the GGUF carries none)" in plan.notes
    assert not result.warnings


def test_an_architecture_without_a_known_template_is_a_warning_not_a_guess(tmp_path):
    model = write_tiny_gguf(tmp_path / "l.gguf", arch="llama")
    result, plan = plan_of(f"model: {model}\n")
    assert "--chat-template" not in plan.processes[0].argv
    (warning,) = [w for w in result.warnings if "ChatML" in w.message]
    assert warning.line == 1 and "'llama'" in warning.message


def test_the_configs_own_template_wins(tmp_path):
    model = write_tiny_gguf(tmp_path / "g.gguf", arch="gemma3")
    _, plan = plan_of(f"model: {model}\nchat_template: chatml\n")
    argv = plan.processes[0].argv
    assert argv[argv.index("--chat-template") + 1] == "chatml" and not any("chat template" in n for n in plan.notes)
