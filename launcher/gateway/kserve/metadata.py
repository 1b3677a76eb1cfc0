"""What KServe clients ask before they infer: the server's name, version and extensions, and each
model's inputs and outputs (from the one input table, protocols/kserve/inputs.py)."""
from __future__ import annotations

from importlib import metadata

from ...protocols.kserve.inputs import INPUTS, OUTPUTS

# Extensions of the protocol launcher implements (Triton's names).
EXTENSIONS = ("binary_tensor_data", "parameters", "generate")
PLATFORM = "llama.cpp"


def launcher_version() -> str:
    try:
        return metadata.version("launcher")
    except metadata.PackageNotFoundError:
        return "0"


def server_metadata() -> dict:
    return {"name": "launcher", "version": launcher_version(), "extensions": list(EXTENSIONS)}


def model_metadata(name: str, version: str) -> dict:
    return {"name": name, "versions": [version], "platform": PLATFORM,
            "inputs": [{"name": i.name, "datatype": i.datatype, "shape": list(i.shape)} for i in INPUTS],
            "outputs": [{"name": n, "datatype": d, "shape": [-1]} for n, d in OUTPUTS]}
