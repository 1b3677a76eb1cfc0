"""The shipped JSON Schema, the tables read from it, and its errors turned into `Problem`s.

The schema is the one source for engine keys: their llama-server flag (`x-flag`), their
llama-cpp-python server flag (`x-python-flag`), their `launch serve` option (`x-serve-option`)
and whether only the Ascend fork reads them (`x-fork-only`). Model keys are defined once under
`$defs/model_settings` and referenced from the top level and from every `models` item.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from typing import Iterator

import jsonschema

from ..errors import did_you_mean
from .problems import Problem
from .source import Source

_TYPE_NAMES = {"integer": "a whole number", "number": "a number", "string": "a string",
               "boolean": "true or false", "array": "a list", "object": "a mapping"}
# Sections of a model's settings (objects); every other model setting is an engine key.
MODEL_SECTIONS = ("devices", "parallel", "engine", "defaults")
GATEWAY_SIDE = ("set_params", "strip_params")  # a model's keys that the gateway applies, not the engine


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(resources.files("launcher.config").joinpath("schema.json").read_text())


def resolve(node: dict) -> dict:
    """Follow a local `$ref` (`#/$defs/...`)."""
    while isinstance(node, dict) and "$ref" in node:
        target: dict = schema()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def properties_of(node: dict) -> dict:
    """Every property a node allows: its own, and those of the schemas it references or combines."""
    node = resolve(node)
    out: dict = {}
    for part in node.get("allOf", []):
        out.update(properties_of(part))
    out.update(node.get("properties", {}))
    return out


def property_schema(path: tuple) -> dict:
    """The schema of the key at `path` (list indexes step into `items`), or {}."""
    node = resolve(schema())
    for part in path:
        node = resolve(node.get("items", {})) if isinstance(part, int) else resolve(properties_of(node).get(part, {}))
    return node


def model_settings() -> dict:
    """Every key a model takes (engine keys and sections), in schema order."""
    return schema()["$defs"]["model_settings"]["properties"]


def engine_keys() -> dict:
    """Engine keys (the Ascend guide's parameters) -> their schema, in schema order."""
    return {k: v for k, v in model_settings().items() if k not in MODEL_SECTIONS and k not in GATEWAY_SIDE}


def annotated(annotation: str) -> dict:
    """Engine key -> value of an `x-...` annotation, for the keys that carry it."""
    return {k: v[annotation] for k, v in engine_keys().items() if annotation in v}


@lru_cache(maxsize=8)
def _validator(engine_kinds: tuple[str, ...] | None) -> jsonschema.Draft202012Validator:
    doc = schema()
    if engine_kinds is not None:  # the kinds registered now (a test may add one), not only the shipped ones
        doc = copy.deepcopy(doc)
        doc["$defs"]["model_settings"]["properties"]["engine"]["properties"]["kind"]["enum"] = list(engine_kinds)
    return jsonschema.Draft202012Validator(doc, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def check(src: Source, engine_kinds: tuple[str, ...] | None = None) -> list[Problem]:
    """Every schema problem; `engine_kinds` replaces the schema's list of `engine.kind` values."""
    validator = _validator(engine_kinds)
    problems: list[Problem] = []
    for error in validator.iter_errors(src.data):
        problems.extend(_translate(error, src))
    return sorted(problems, key=lambda p: (p.line, p.column))


def _unknown_keys(error: jsonschema.ValidationError, src: Source, path: tuple) -> Iterator[Problem]:
    known = sorted(properties_of(error.schema))
    # unevaluatedProperties also names known keys whose own value failed: those have their own problem.
    for key in sorted(set(error.instance) - set(known), key=str):
        hint = did_you_mean(key, known) or f"known keys here: {', '.join(known)}"
        yield src.problem(path + (key,), f"unknown key {key!r}", hint=hint)


def _translate(error: jsonschema.ValidationError, src: Source) -> Iterator[Problem]:
    path = tuple(error.absolute_path)
    kind = error.validator
    if kind in ("additionalProperties", "unevaluatedProperties"):
        yield from _unknown_keys(error, src, path)
        return
    if kind == "required":
        for key in error.validator_value:
            if key not in error.instance:
                desc = property_schema(path + (key,)).get("description", "")
                yield src.problem(path, f"missing required key {key!r}", hint=desc)
        return
    if kind == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        hint = did_you_mean(error.instance, error.validator_value) or f"one of: {allowed}"
        yield src.problem(path, f"expected one of {allowed}", value=error.instance, hint=hint)
        return
    if kind == "type":
        want = error.validator_value
        want = " or ".join(_TYPE_NAMES.get(t, t) for t in ([want] if isinstance(want, str) else want))
        yield src.problem(path, f"expected {want}", value=error.instance, hint=_desc(path))
        return
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        yield src.problem(path, f"must be {op} {error.validator_value}", value=error.instance, hint=_desc(path))
        return
    if kind in ("oneOf", "anyOf"):
        # A branch whose type matched failed on something finer: report that one.
        finer = [e for e in error.context if e.validator not in ("type", "enum")]
        if finer:
            yield from _translate(finer[0], src)
            return
        yield src.problem(path, "not an accepted value", value=error.instance, hint=_desc(path))
        return
    if kind == "minLength":
        yield src.problem(path, "must not be empty", value=error.instance, hint=_desc(path))
        return
    if kind == "minItems":
        yield src.problem(path, f"needs at least {error.validator_value} item(s)", value=error.instance)
        return
    if kind == "uniqueItems":
        yield src.problem(path, "items must not repeat", value=error.instance)
        return
    if kind == "format":
        yield src.problem(path, f"is not an {error.validator_value} address" if error.validator_value.startswith("ip")
                          else f"is not a valid {error.validator_value}", value=error.instance, hint=_desc(path))
        return
    if kind == "pattern":
        yield src.problem(path, f"does not match {error.validator_value}", value=error.instance, hint=_desc(path))
        return
    yield src.problem(path, error.message, hint=_desc(path))


def _desc(path: tuple) -> str:
    return property_schema(path).get("description", "")
