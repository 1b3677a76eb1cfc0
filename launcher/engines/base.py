"""What every engine kind answers: the command of one engine process, its readiness path, the settings
the memory plan assumes when the config leaves them out, its own document checks, and what must exist
before it starts (launcher's build, the Python bindings).

The planner, the memory plan, validation and `prepare` ask a kind (`engines.engine_for(spec)`) and never
compare kind names. A kind is one class; `engines.register` adds one (a test registers a toy kind).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, NamedTuple, Protocol

from ..config.inherit import ModelView
from ..config.model import ModelSpec
from ..config.problems import Problem

LOOPBACK = "127.0.0.1"  # engines listen here at an internal port; only the gateway is public


class Programs(Protocol):
    """Where the programs are (launcher's `Binaries`): by name, with their `--help` when it could be read."""
    python: str
    bindings_env: tuple[tuple[str, str], ...]

    def tool(self, name: str) -> str: ...

    def help_of(self, binary: str) -> str | None: ...


@dataclass(frozen=True)
class Slot:
    """One engine process of a model, as the planner lays it out."""
    index: int                        # replica number
    group: tuple[int, ...]            # host device ids it sees
    port: int
    model_path: str
    run_dir: str                      # where files it reads are written
    extra: tuple[str, ...] = ()       # flags the planner adds (layer split, --rpc, a replica's threads)
    threads: int | None = None        # its share of the cores (CPU replicas)


class EngineFile(NamedTuple):
    kind: str
    path: str
    content: str


@dataclass(frozen=True)
class Launch:
    """The command of one engine process and what comes with it."""
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()   # added to the model's own env
    files: tuple[EngineFile, ...] = ()
    issues: tuple = ()                      # FlagIssues: keys whose flag the binary lacks (not passed)
    notes: tuple[str, ...] = ()


class EngineKind:
    """One kind of engine. Subclasses set the class attributes and override what differs."""
    name: ClassVar[str] = ""                 # the config's `engine.kind` (internal kinds: a role name)
    programs: ClassVar[tuple[str, ...]] = ()  # program names it runs (engines.programs)
    health_path: ClassVar[str] = "/health"    # answers 200 once the model is loaded
    own_build: ClassVar[bool] = False         # always needs launcher's own build (not just by default)
    bindings: ClassVar[bool] = False          # loads the Python bindings (LLAMA_CPP_LIB_PATH)

    @classmethod
    def for_spec(cls, spec: ModelSpec) -> "EngineKind":
        """The kind that runs this model (a kind may hand a flavor or a mode to a variant)."""
        return cls()

    def launch(self, spec: ModelSpec, slot: Slot, programs: Programs) -> Launch:
        raise NotImplementedError

    def health_url(self, port: int) -> str:
        return f"http://{LOOPBACK}:{port}{self.health_path}"

    def memory_defaults(self, spec: ModelSpec, context_length: int) -> dict:
        """n_ctx, n_seq, unified, n_batch, n_ubatch, flash_attn as this engine runs them when unset."""
        raise NotImplementedError

    def document_problems(self, view: ModelView, flavor: str, mode: str) -> list[Problem]:
        """Problems only this kind has with a model's section of the document."""
        return []

