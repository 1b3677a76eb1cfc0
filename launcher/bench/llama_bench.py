"""llama-bench with the Llama Switch API's parameter set: one table, pure argv building, parsed results.

    params = BenchParams.from_dict({"n_prompt": 512, "flash_attn": 1, "output": "md"})
    cmd = bench_command(binary, model_path, params)     # pure, unit-tested
    run = await run_llama_bench(cmd, env)               # output in the format asked for, and parsed rows

The table holds the document's 27 parameters with the document's types (0/1 integers, `tensor_split`
as "0.5,0.5", `output` md|csv|json|jsonl|sql, ...); booleans and the pinned llama-bench's own spellings
(`flash_attn: "on"`) are accepted too. Each maps to the pinned llama-bench's flag; where the document
and the binary differ (mmap is `--load-mode` now, `flash_attn` takes on|off|auto, `-ts` separates
devices with `/` because `,` means another test value), the render function says so.
"""
from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import dataclass
from typing import Any, Callable

import jsonschema

from ..errors import LauncherError

FLAG01 = {"anyOf": [{"enum": [0, 1]}, {"type": "boolean"}]}
CACHE_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]
FORMATS = ["csv", "json", "jsonl", "md", "sql"]
PARSEABLE = ("json", "jsonl", "csv")  # formats whose results are read in full


def _int(minimum: int | None = None, maximum: int | None = None) -> dict:
    out: dict = {"type": "integer"}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def _value(flag: str) -> Callable[[Any], list[str]]:
    return lambda v: [flag, str(v)]


def _zero_one(flag: str) -> Callable[[Any], list[str]]:
    return lambda v: [flag, "1" if v else "0"]


def _switch(flag: str) -> Callable[[Any], list[str]]:
    return lambda v: [flag] if v else []


def _nonempty(flag: str) -> Callable[[Any], list[str]]:
    return lambda v: [flag, str(v)] if v not in ("", None) else []


def _flash_attn(v) -> list[str]:
    if isinstance(v, str):
        return ["-fa", v]
    return ["-fa", "on" if v else "off"]


def _tensor_split(v) -> list[str]:
    parts = [float(x) for x in (v.replace("/", ",").split(",") if isinstance(v, str) else v)]
    if not any(parts):
        return []  # "0": llama-bench's default, no split given
    return ["-ts", "/".join(f"{x:g}" for x in parts)]


@dataclass(frozen=True)
class BenchParam:
    name: str
    schema: dict
    render: Callable[[Any], list[str]]
    help: str


PARAMS: tuple[BenchParam, ...] = (
    BenchParam("n_prompt", _int(0), _value("-p"), "prompt tokens"),
    BenchParam("n_gen", _int(0), _value("-n"), "generated tokens"),
    BenchParam("n_depth", _int(0), _value("-d"), "tokens already in the context"),
    BenchParam("batch_size", _int(1), _value("-b"), "logical batch size"),
    BenchParam("ubatch_size", _int(1), _value("-ub"), "physical batch size"),
    BenchParam("cache_type_k", {"enum": CACHE_TYPES}, _value("-ctk"), "K cache type"),
    BenchParam("cache_type_v", {"enum": CACHE_TYPES}, _value("-ctv"), "V cache type"),
    BenchParam("threads", _int(1), _value("-t"), "CPU threads"),
    BenchParam("cpu_mask", {"type": "string", "pattern": r"^(|(0x)?[0-9a-fA-F]+(,(0x)?[0-9a-fA-F]+)*)$"},
               _nonempty("-C"), "CPU affinity mask, hex[,hex]"),
    BenchParam("cpu_strict", FLAG01, _zero_one("--cpu-strict"), "strict CPU placement, 0/1"),
    BenchParam("poll", _int(0, 100), _value("--poll"), "polling level 0-100"),
    BenchParam("n_gpu_layers", _int(-1), _value("-ngl"), "layers on the accelerator"),
    BenchParam("split_mode", {"enum": ["none", "layer", "row", "tensor"]}, _value("-sm"), "split mode"),
    BenchParam("main_gpu", _int(0), _value("-mg"), "main device"),
    BenchParam("no_kv_offload", FLAG01, _zero_one("-nkvo"), "keep the KV cache on the host, 0/1"),
    BenchParam("flash_attn", {"anyOf": [{"enum": [0, 1, "on", "off", "auto"]}, {"type": "boolean"}]}, _flash_attn,
               "flash attention: 0/1 (or on/off/auto)"),
    BenchParam("mmap", FLAG01, lambda v: ["--load-mode", "mmap" if v else "none"], "memory-map the model, 0/1"),
    BenchParam("numa", {"enum": ["", "distribute", "isolate", "numactl"]}, _nonempty("--numa"), "NUMA mode"),
    BenchParam("embeddings", FLAG01, _zero_one("-embd"), "embeddings mode, 0/1"),
    BenchParam("tensor_split", {"anyOf": [{"type": "string", "pattern": r"^\d+(\.\d+)?([,/]\d+(\.\d+)?)*$"},
                                          {"type": "array", "items": {"type": "number", "minimum": 0}}]},
               _tensor_split, "share per device, \"0.5,0.5\""),
    BenchParam("repetitions", _int(1, 100), _value("-r"), "runs per test"),
    BenchParam("priority", _int(-1, 3), _value("--prio"), "process priority -1..3"),
    BenchParam("delay", {"type": "number", "minimum": 0}, _value("--delay"), "seconds between tests"),
    BenchParam("output", {"enum": FORMATS}, _value("-o"), "output format"),
    BenchParam("output_err", {"enum": ["none"] + FORMATS}, lambda v: [] if v == "none" else ["-oe", v],
               "format of the second copy, on stderr"),
    BenchParam("verbose", FLAG01, _switch("-v"), "verbose, 0/1"),
    BenchParam("progress", FLAG01, _switch("--progress"), "progress lines, 0/1"),
)
BY_NAME = {p.name: p for p in PARAMS}
SCHEMA = {"type": "object", "additionalProperties": False, "properties": {p.name: p.schema for p in PARAMS}}
DEFAULTS = {"n_prompt": 128, "n_gen": 32, "repetitions": 3}  # a quick run when the caller says nothing


@dataclass(frozen=True)
class BenchParams:
    values: tuple[tuple[str, Any], ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BenchParams":
        errors = sorted(jsonschema.Draft202012Validator(SCHEMA).iter_errors(data), key=lambda e: list(e.path))
        if errors:
            raise LauncherError("; ".join(f"{'.'.join(map(str, e.path)) or 'config'}: {e.message}" for e in errors))
        merged = {**DEFAULTS, **data}
        return cls(tuple((p.name, merged[p.name]) for p in PARAMS if p.name in merged))

    def get(self, name: str, default=None):
        return dict(self.values).get(name, default)

    @property
    def output(self) -> str:
        return self.get("output", "json")


@dataclass(frozen=True)
class BenchCommand:
    argv: tuple[str, ...]
    output: str               # the format of stdout (what the caller asked for)
    parse_stream: str         # "stdout" or "stderr": where a parseable copy of the results is
    parse_format: str


def bench_command(binary: str, model: str, p: BenchParams) -> BenchCommand:
    """The llama-bench command line. Output goes to stdout in the format asked for (JSON by default); unless
    that parses, a second copy as JSON goes to stderr for parsing (or the caller's own `output_err`)."""
    argv = [binary, "-m", model]
    for name, value in p.values:
        argv += BY_NAME[name].render(value)
    asked = dict(p.values)
    if "output" not in asked:
        argv += ["-o", "json"]
    out, err = p.output, asked.get("output_err", "none")
    if out in PARSEABLE:
        return BenchCommand(tuple(argv), out, "stdout", out)
    if err == "none":  # nothing extra for the caller; the copy on stderr is only read by launcher
        argv += ["-oe", "json"]
        err = "json"
    if err in PARSEABLE:
        return BenchCommand(tuple(argv), out, "stderr", err)
    return BenchCommand(tuple(argv), out, "stdout", out)  # md: test and t/s only; sql: none


@dataclass
class BenchRun:
    output: str          # llama-bench's stdout, in the format asked for
    rows: list[dict]     # its results, parsed


def parse_rows(fmt: str, text: str) -> list[dict]:
    """llama-bench's results from its output in `fmt` (json, jsonl, csv; md gives test and t/s only)."""
    if fmt == "json":
        return _json_array(text)
    if fmt == "jsonl":
        return [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]
    if fmt == "csv":
        return [_typed(r) for r in csv.DictReader(io.StringIO(text))]
    if fmt == "md":
        return _md_rows(text)
    return []


def _json_array(text: str) -> list[dict]:
    """The JSON array llama-bench prints, also when -v mixed log lines into the same stream."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    lines = text.splitlines()
    opens = [i for i, ln in enumerate(lines) if ln.strip() == "["]
    closes = [i for i, ln in enumerate(lines) if ln.strip() == "]"]
    if not opens or not closes:
        raise ValueError("no JSON array in the output")
    return json.loads("\n".join(lines[opens[0]:closes[-1] + 1]))


def _typed(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        try:
            out[k] = int(v)
        except (TypeError, ValueError):
            try:
                out[k] = float(v)
            except (TypeError, ValueError):
                out[k] = v
    return out


def _md_rows(text: str) -> list[dict]:
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    if len(lines) < 3:
        return []
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for ln in lines[2:]:
        cells = dict(zip(head, (c.strip() for c in ln.strip("|").split("|"))))
        mean, _, dev = cells.get("t/s", "").partition("±")
        test = cells.get("test", "")
        row = {"test": test, "avg_ts": float(mean or 0), "stddev_ts": float(dev or 0), "model_type": cells.get("model"),
               "backends": cells.get("backend"), "n_threads": _typed({"t": cells.get("threads")})["t"]}
        rows.append(row)
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """The fields people read from llama-bench's results: test, tokens/s (mean, stddev), settings."""
    out = []
    for r in rows:
        if r.get("test"):
            test = r["test"]
        else:
            test = f"pp{r['n_prompt']}" if r.get("n_prompt") and not r.get("n_gen") else f"tg{r.get('n_gen')}"
            if r.get("n_depth"):
                test += f" @ d{r['n_depth']}"
        samples = r.get("samples_ts")
        out.append({"test": test, "tokens_per_s": round(r.get("avg_ts", 0.0), 2),
                    "stddev": round(r.get("stddev_ts", 0.0), 2), "model_type": r.get("model_type"),
                    "backend": r.get("backends"), "threads": r.get("n_threads"), "n_gpu_layers": r.get("n_gpu_layers"),
                    "repetitions": len(samples) if isinstance(samples, list) else None})
    return out


async def run_llama_bench(cmd: BenchCommand, env: dict[str, str] | None = None) -> BenchRun:
    proc = await asyncio.create_subprocess_exec(*cmd.argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    if proc.returncode != 0:
        tail = stderr.strip().splitlines()[-5:]
        raise LauncherError(f"llama-bench exited with {proc.returncode}: {' | '.join(tail)}")
    text = stdout if cmd.parse_stream == "stdout" else stderr
    try:
        rows = parse_rows(cmd.parse_format, text)
    except (ValueError, KeyError) as exc:
        raise LauncherError(f"cannot read llama-bench's {cmd.parse_format} output: {exc}: {text[:200]!r}") from exc
    return BenchRun(stdout, rows)
