"""Tier 1: what a config reload would do, decided purely from the old and the new config."""
from launcher.reload import diff
from launcher.validate import load_source

BASE = """port: 8080
engine: {start_timeout: 30}
models:
  - {model: a.gguf, model_alias: alpha, n_ctx: 2048}
  - {model: b.gguf, model_alias: beta, n_ctx: 2048}
"""


def config(text: str):
    return load_source(text, "c.yaml", offline=True).config


def test_only_models_whose_engine_settings_changed_restart():
    new = BASE.replace("model_alias: beta, n_ctx: 2048", "model_alias: beta, n_ctx: 4096") + \
        "  - {model: c.gguf, model_alias: gamma}\n"
    changes = diff(config(BASE), config(new))
    assert [s.name for s in changes.added] == ["gamma"] and changes.removed == []
    assert [s.name for s in changes.changed] == ["beta"] and changes.in_place == [] and changes.refused == []
    assert changes.summary() == "added gamma; restarted beta"


def test_defaults_ttl_and_preload_apply_in_place():
    new = BASE.replace("model_alias: alpha, n_ctx: 2048", "model_alias: alpha, n_ctx: 2048, ttl: 60, "
                       "defaults: {temperature: 0.2}")
    changes = diff(config(BASE), config(new))
    assert changes.changed == [] and [s.name for s in changes.in_place] == ["alpha"]


def test_removed_models_and_gateway_keys():
    new = BASE.replace("  - {model: b.gguf, model_alias: beta, n_ctx: 2048}\n", "") + \
        "gateway: {api_keys: [k1], cors_origins: ['https://app.example'], max_queue: 8}\n"
    changes = diff(config(BASE), config(new))
    assert changes.removed == ["beta"] and changes.gateway == ["api_keys", "cors_origins"]
    assert changes.later == ["max_queue"]


def test_a_new_port_or_host_is_refused():
    changes = diff(config(BASE), config(BASE.replace("port: 8080", "port: 9090\nhostname: 0.0.0.0")))
    assert len(changes.refused) == 2 and all("restart" in r for r in changes.refused)
    assert diff(config(BASE), config(BASE)).summary() == "nothing changed"


def test_named_keys_aliases_and_parameter_rules_apply_in_place():
    new = BASE.replace("model_alias: alpha, n_ctx: 2048", "model_alias: alpha, n_ctx: 2048, aliases: [a1], "
                       "set_params: {max_tokens: 64}, strip_params: [seed]") + \
        "gateway: {keys: [{name: team, key_env: TEAM_KEY, requests_per_minute: 10}]}\n"
    changes = diff(config(BASE), config(new))
    assert changes.changed == [] and [s.name for s in changes.in_place] == ["alpha"]
    assert changes.gateway == ["keys"] and changes.later == []
