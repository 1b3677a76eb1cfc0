"""The README's generated parts: the config reference (from the schema), the Llama Switch `config`
names (the schema's x-switch-name) and the benchmark parameters (engines/llama_bench.PARAMS).

    python -m launcher.docs          rewrite README.md between the markers
"""
from __future__ import annotations

import sys
from pathlib import Path

from .config.schema import (
    GATEWAY_SIDE,
    MODEL_SECTIONS,
    engine_keys,
    model_settings,
    property_schema,
    schema,
)
from .config.switch_names import GATEWAY_NAMES, switch_table
from .engines.llama_bench import PARAMS

SECTIONS = ("config-reference", "switch-names", "benchmark-parameters")


def _type(node: dict) -> str:
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "oneOf" in node:
        return " or ".join(_type(n) for n in node["oneOf"])
    t = node.get("type", "")
    if t == "array":
        return f"list of {_type(node.get('items', {}))}"
    return " or ".join(t) if isinstance(t, list) else t


def _row(key: str, node: dict) -> str:
    extra = []
    if "x-flag" in node and key != "model":
        extra.append(f"llama-server `{node['x-flag']}`")
    if node.get("x-fork-only"):
        extra.append("fork only")
    tail = f" ({'; '.join(extra)})" if extra else ""
    desc = node["description"].replace("|", "\\|")
    return f"| `{key}` | {_type(node)} | {desc}{tail} |"


def reference() -> str:
    s = schema()
    top = s["properties"]
    keys = [("model", top["model"]), ("aliases", top["aliases"]), ("capabilities", top["capabilities"]),
            *((k, model_settings()[k]) for k in GATEWAY_SIDE), *engine_keys().items(),
            *((k, top[k]) for k in ("port", "hostname", "models_dir"))]
    out = ["### Engine keys (top level)", "", s["description"], "", "| key | type | meaning |", "|---|---|---|"]
    out += [_row(k, v) for k, v in keys]
    models = top["models"]
    item = s["$defs"]["model_item"]["properties"]
    out += ["", "### `models` (several models)", "", models["description"], "",
            "Keys only a `models` item has (all engine keys and the devices/parallel/engine/defaults sections "
            "apply too):", "", "| key | type | meaning |", "|---|---|---|"]
    out += [_row(k, v) for k, v in item.items() if k not in ("model", "capabilities", "aliases")]
    worker = s["$defs"]["worker"]
    out += ["", "### `workers` (Python workers)", "", top["workers"]["description"], "", worker["description"], "",
            "| key | type | meaning |", "|---|---|---|"]
    out += [_row(k, v) for k, v in worker["properties"].items()]
    sections = [(k, model_settings()[k]) for k in MODEL_SECTIONS] + [(k, top[k]) for k in ("gateway", "build")]
    for name, sec in sections:
        out += ["", f"### `{name}`", "", sec["description"], "", "| key | type | meaning |", "|---|---|---|"]
        out += [_row(k, v) for k, v in sec["properties"].items()]
    return "\n".join(out)


def switch_names() -> str:
    out = ["| `config` name | config key | llama-server flag |", "|---|---|---|"]
    for name, key in switch_table().items():
        out.append(f"| `{name}` | `{key}` | `{property_schema((key,)).get('x-flag', '')}` |")
    out += [f"| `{name}` | (accepted) | engines listen on internal ports; clients use the gateway |"
            for name in GATEWAY_NAMES]
    return "\n".join(out)


def benchmark_parameters() -> str:
    out = ["| parameter | llama-bench flag | meaning |", "|---|---|---|"]
    out += [f"| `{p.name}` | `{p.flag}` | {p.help} |" for p in PARAMS]
    return "\n".join(out)


GENERATORS = {"config-reference": reference, "switch-names": switch_names, "benchmark-parameters": benchmark_parameters}


def render_readme(text: str) -> str:
    for name in SECTIONS:
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{GENERATORS[name]()}\n{end}{tail}"
    return text


if __name__ == "__main__":
    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    readme.write_text(render_readme(readme.read_text()))
