"""`launch quantize IN.gguf OUT.gguf TYPE`: the pinned llama-quantize of launcher's one compile.

It matters most on Ascend: CANN accelerates matmul only for F16, F32, Q8_0 and Q4_0, and the K-quants
most GGUFs ship in run on the CPU there. The allowed types are the binary's own (`--help`); a model
that is already quantized is requantized with `--allow-requantize` (and a warning: quality suffers,
quantize from F16/F32 when you have it). The output appears only when complete, never over a file.
"""
from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import LauncherError, did_you_mean
from ..gguf_info import GGUF_MAGIC, read_magic, summarize
from .runner import Progress

UNQUANTIZED = ("F32", "F16", "BF16")
_TYPE_LINE = re.compile(r"^\s*\d+\s+or\s+([A-Z0-9_]+)\s*:", re.MULTILINE)
_TENSOR = re.compile(r"\[\s*(\d+)/\s*(\d+)\]")
_QUANT_IN_NAME = re.compile(r"(?i)[-_.](?:I?Q\d[A-Z0-9_]*|F16|BF16|F32)$")


def allowed_types(help_text: str) -> list[str]:
    """The quantization types a llama-quantize's --help lists (`  7  or  Q8_0  :  7.96G, ...`)."""
    return _TYPE_LINE.findall(help_text)


def suggested_output(model: str | Path, qtype: str) -> Path:
    """Where a quantized copy goes: the same folder and name, its quantization replaced."""
    path = Path(model)
    stem = _QUANT_IN_NAME.sub("", path.stem)
    return path.with_name(f"{stem}-{qtype.upper()}.gguf")


def quantize_command(model: str | Path, qtype: str) -> str:
    """The exact command that makes a CANN-accelerated copy (printed by `launch validate`)."""
    return f"launch quantize {model} {suggested_output(model, qtype)} {qtype.lower()}"


@dataclass(frozen=True)
class QuantizeJob:
    argv: tuple[str, ...]
    source: Path
    target: Path
    partial: Path
    requantize: bool


def plan_quantize(binary: str, help_text: str, source: str | Path, target: str | Path, qtype: str,
                  threads: int | None = None, force: bool = False) -> QuantizeJob:
    """Check everything before llama-quantize runs; every refusal says why."""
    source, target = Path(source), Path(target)
    types = allowed_types(help_text)
    wanted = next((t for t in types if t.lower() == qtype.lower()), None)
    if wanted is None:
        hint = did_you_mean(qtype.upper(), types) or "one of: " + ", ".join(types)
        raise LauncherError(f"unknown quantization type {qtype!r}: {hint}")
    if not source.is_file() or read_magic(source) != GGUF_MAGIC:
        raise LauncherError(f"{source} is not a GGUF file")
    if target.resolve() == source.resolve():
        raise LauncherError("the output must be another file than the input")
    if target.exists() and not force:
        raise LauncherError(f"{target} exists: launch quantize does not overwrite (give --force to replace it)")
    if not target.parent.is_dir():
        raise LauncherError(f"folder {target.parent} does not exist")
    current = summarize(source).quantization
    requantize = current is not None and current not in UNQUANTIZED
    partial = target.with_name(target.name + ".partial")
    argv = [binary] + (["--allow-requantize"] if requantize else []) + [str(source), str(partial), wanted]
    if threads:
        argv.append(str(threads))
    return QuantizeJob(tuple(argv), source, target, partial, requantize)


def run_quantize(job: QuantizeJob, log: Path, stream=sys.stderr) -> None:
    progress = Progress(f"quantizing {job.source.name}", stream)
    tail: list[str] = []
    with open(log, "w") as fh:
        proc = subprocess.Popen(list(job.argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
        assert proc.stdout
        for line in proc.stdout:
            fh.write(line)
            tail = (tail + [line.rstrip()])[-20:]
            match = _TENSOR.search(line)
            if match and int(match.group(2)):
                progress.update(int(match.group(1)) * 100 // int(match.group(2)))
        code = proc.wait()
    progress.done()
    if code != 0 or not job.partial.is_file():
        job.partial.unlink(missing_ok=True)
        raise LauncherError(f"llama-quantize failed (exit {code}); last lines:\n" + "\n".join(tail) + f"\nlog: {log}")
    job.partial.replace(job.target)  # the output appears only when it is complete
