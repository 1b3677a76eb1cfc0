"""llama.cpp's `llama-server`: upstream (flags from the schema's `x-flag`), and the Ascend fork's, which reads
the guide's YAML itself (`--config`); its `llama-mpi-server` runs EP+TP as every rank of an mpirun job."""
from __future__ import annotations

import yaml

from ..config.model import ModelSpec
from .base import LOOPBACK, EngineFile, EngineKind, Launch, Programs, Slot
from .flags import engine_flags, unsupported
from .programs import LLAMA_SERVER, MPI_SERVER

FORK_CONFIG = "fork-config"
EP_TP_SIZES = ("tp_size", "dp_size", "ep_size", "moe_tp_size")


class LlamaServer(EngineKind):
    name = "llama-server"
    programs = (LLAMA_SERVER,)

    @classmethod
    def for_spec(cls, spec: ModelSpec) -> EngineKind:
        if spec.engine.flavor == "ascend-fork":
            return AscendMpiServer() if spec.parallel.mode == "ep_tp" else AscendForkServer()
        return cls()

    def server(self, spec: ModelSpec, programs: Programs) -> str:
        """The model's own engine.binary, else launcher's build (or PATH)."""
        return spec.engine.binary or programs.tool(LLAMA_SERVER)

    def launch(self, spec: ModelSpec, slot: Slot, programs: Programs) -> Launch:
        """Keys whose flag the binary's --help lacks are left out and reported."""
        fragments = engine_flags(spec.params)
        server = self.server(spec, programs)
        issues = unsupported(fragments, programs.help_of(server), server)
        skip = {i.key for i in issues}
        argv = [server, "--model", slot.model_path, "--alias", spec.name, "--host", LOOPBACK, "--port", str(slot.port)]
        for key, frag in fragments:
            if key not in skip:
                argv += frag
        return Launch(tuple(argv) + slot.extra + spec.engine.extra_args, issues=tuple(issues))

    def memory_defaults(self, spec: ModelSpec, context_length: int) -> dict:
        # n_ctx 0 = the model's training context; --parallel unset = 4 slots on one unified cache
        p = spec.params
        return dict(n_ctx=p.n_ctx or context_length, n_seq=p.n_parallel or 4, unified=p.n_parallel is None,
                    n_batch=p.n_batch or 2048, n_ubatch=p.n_ubatch or 512, flash_attn=p.flash_attn != "off")


class AscendForkServer(LlamaServer):
    """The fork's llama-server reads the guide's keys from its own YAML (`llama-server --config X`)."""

    def config_path(self, spec: ModelSpec, slot: Slot) -> str:
        return f"{slot.run_dir}/{spec.name}-{slot.index}.fork.yaml"

    def launch(self, spec: ModelSpec, slot: Slot, programs: Programs) -> Launch:
        path = self.config_path(spec, slot)
        argv = (self.server(spec, programs), "--config", path) + spec.engine.extra_args
        return Launch(argv, files=(EngineFile(FORK_CONFIG, path, fork_config(spec, slot.model_path, slot.port)),))


class AscendMpiServer(AscendForkServer):
    """`mpirun -np N llama-mpi-server --config X`: rank 0 serves HTTP, the others follow its batches. Its
    launch is the program every rank runs; the planner wraps it in mpirun."""
    programs = (MPI_SERVER,)

    def server(self, spec: ModelSpec, programs: Programs) -> str:
        return spec.engine.binary or programs.tool(MPI_SERVER)

    def config_path(self, spec: ModelSpec, slot: Slot) -> str:
        return f"{slot.run_dir}/{spec.name}.fork.yaml"


def fork_config(spec: ModelSpec, model_path: str, port: int) -> str:
    """The YAML the Ascend fork reads with --config: the guide's keys, engine on an internal port."""
    data: dict = {"model": model_path}
    for key, value in spec.params.set_items():
        data[key] = list(value) if isinstance(value, tuple) else value
    data["model_alias"] = spec.name
    data["hostname"], data["port"] = LOOPBACK, port
    if spec.parallel.mode == "ep_tp":
        for key in EP_TP_SIZES:
            data[key] = getattr(spec.parallel, key)
    return yaml.safe_dump(data, sort_keys=False)
