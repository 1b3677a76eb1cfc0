"""A model's parameter rules (`set_params`, `strip_params`), applied to a request's body before the engine sees
it: OpenAI, Anthropic and llama-server's own routes (forward.py) and KServe's engine call (kserve/generation.py)
alike. Stripped first, then set: a field both strips and sets ends up set."""
from __future__ import annotations


def apply_rules(body: dict, spec) -> bool:
    """Change `body` in place; True when it changed."""
    changed = False
    for key in getattr(spec, "strip_params", ()):
        if key in body:
            del body[key]
            changed = True
    for key, value in getattr(spec, "set_params", ()):
        if body.get(key, object()) != value:
            body[key] = value
            changed = True
    return changed

