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
import contextlib
import csv
import io
import json
import os
import re
import signal
from dataclasses import dataclass
from typing import Any, Callable

import jsonschema

from ..children import die_with_parent
from ..errors import LauncherError

FLAG01 = {"anyOf": [{"enum": [0, 1]}, {"type": "boolean"}]}
CACHE_TYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]
FORMATS = ["csv", "json", "jsonl", "md", "sql"]
PARSEABLE = ("json", "jsonl", "csv")  # formats whose results are read in full
_PROGRESS = re.compile(r"llama-bench: [^\n]*\n?")


def _int(minimum: int | None = None, maximum: int | None = None) -> dict:
    out: dict = {"type": "integer"}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


def _tensor_split(v) -> list[str]:
    parts = [float(x) for x in (v.replace("/", ",").split(",") if isinstance(v, str) else v)]
    if not any(parts):
        return []  # "0": llama-bench's default, no split given
    return ["/".join(f"{x:g}" for x in parts)]


# How a value becomes its flag's argument(s); [] leaves the flag out.
STYLES: dict[str, Callable[[Any], list[str] | None]] = {
    "value": lambda v: [str(v)],
    "0/1": lambda v: ["1" if v else "0"],
    "switch": lambda v: [] if v else None,               # the flag alone, when true
    "nonempty": lambda v: [str(v)] if v not in ("", None) else None,
    "on/off": lambda v: [v] if isinstance(v, str) else ["on" if v else "off"],
    "mmap/none": lambda v: ["mmap" if v else "none"],
    "a/b": lambda v: _tensor_split(v) or None,
    "not none": lambda v: [v] if v != "none" else None,
}


@dataclass(frozen=True)
class BenchParam:
    name: str
    schema: dict
    flag: str
    style: str      # a key of STYLES
    help: str

    def render(self, value) -> list[str]:
        args = STYLES[self.style](value)
        return [] if args is None else [self.flag, *args]


PARAMS: tuple[BenchParam, ...] = (
    BenchParam("n_prompt", _int(0), "-p", "value", "prompt tokens"),
    BenchParam("n_gen", _int(0), "-n", "value", "generated tokens"),
    BenchParam("n_depth", _int(0), "-d", "value", "tokens already in the context"),
    BenchParam("batch_size", _int(1), "-b", "value", "logical batch size"),
    BenchParam("ubatch_size", _int(1), "-ub", "value", "physical batch size"),
    BenchParam("cache_type_k", {"enum": CACHE_TYPES}, "-ctk", "value", "K cache type"),
    BenchParam("cache_type_v", {"enum": CACHE_TYPES}, "-ctv", "value", "V cache type"),
    BenchParam("threads", _int(1), "-t", "value", "CPU threads"),
    BenchParam("cpu_mask", {"type": "string", "pattern": r"^(|(0x)?[0-9a-fA-F]+(,(0x)?[0-9a-fA-F]+)*)$"}, "-C",
               "nonempty", "CPU affinity mask, hex[,hex]"),
    BenchParam("cpu_strict", FLAG01, "--cpu-strict", "0/1", "strict CPU placement, 0/1"),
    BenchParam("poll", _int(0, 100), "--poll", "value", "polling level 0-100"),
    BenchParam("n_gpu_layers", _int(-1), "-ngl", "value", "layers on the accelerator"),
    BenchParam("split_mode", {"enum": ["none", "layer", "row", "tensor"]}, "-sm", "value", "split mode"),
    BenchParam("main_gpu", _int(0), "-mg", "value", "main device"),
    BenchParam("no_kv_offload", FLAG01, "-nkvo", "0/1", "keep the KV cache on the host, 0/1"),
    BenchParam("flash_attn", {"anyOf": [{"enum": [0, 1, "on", "off", "auto"]}, {"type": "boolean"}]}, "-fa", "on/off",
               "flash attention: 0/1 (or on/off/auto)"),
    BenchParam("mmap", FLAG01, "--load-mode", "mmap/none", "memory-map the model, 0/1"),
    BenchParam("numa", {"enum": ["", "distribute", "isolate", "numactl"]}, "--numa", "nonempty", "NUMA mode"),
    BenchParam("embeddings", FLAG01, "-embd", "0/1", "embeddings mode, 0/1"),
    BenchParam("tensor_split", {"anyOf": [{"type": "string", "pattern": r"^\d+(\.\d+)?([,/]\d+(\.\d+)?)*$"},
                                          {"type": "array", "items": {"type": "number", "minimum": 0}}]},
               "-ts", "a/b", "share per device, \"0.5,0.5\""),
    BenchParam("repetitions", _int(1, 100), "-r", "value", "runs per test"),
    BenchParam("priority", _int(-1, 3), "--prio", "value", "process priority -1..3"),
    BenchParam("delay", {"type": "number", "minimum": 0}, "--delay", "value", "seconds between tests"),
    BenchParam("output", {"enum": FORMATS}, "-o", "value", "output format"),
    BenchParam("output_err", {"enum": ["none"] + FORMATS}, "-oe", "not none", "format of the second copy, on stderr"),
    BenchParam("verbose", FLAG01, "-v", "switch", "verbose, 0/1"),
    BenchParam("progress", FLAG01, "--progress", "switch", "progress lines, 0/1"),
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
    """llama-bench's results from its output in `fmt` (json, jsonl, csv; md gives test and t/s only).
    `progress: 1` writes `llama-bench: ...` lines into the same stream, even glued to a line of JSON."""
    text = _PROGRESS.sub("", text)
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
    """The result objects of llama-bench's JSON array. Log lines (-v) fall between objects, never inside
    one (each object is printed at once), so every object is decoded where it begins."""
    decoder, rows, i = json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) >= 0:
        try:
            obj, i = decoder.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        if isinstance(obj, dict) and "avg_ts" in obj:
            rows.append(obj)
    if not rows and "[" not in text:
        raise ValueError("no JSON array in the output")
    return rows


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
                                                stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True,
                                                preexec_fn=die_with_parent)
    try:
        out, err = await proc.communicate()
    except asyncio.CancelledError:  # cancelled, or launcher is stopping: the benchmark ends with it
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
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
