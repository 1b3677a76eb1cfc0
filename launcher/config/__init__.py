"""Config: the YAML document read with its line numbers, checked against the schema and itself, and
converted into typed frozen objects (model.py). Nothing here looks at the machine: `launcher.validate`
combines these document checks with the engine kinds', the machine's and the memory plan's.

    source (YAML + line numbers) -> schema -> document_checks -> convert (typed objects)
"""
from __future__ import annotations

from .model import Config, ModelSpec
from .problems import Problem
from .source import Source

__all__ = ["Config", "ModelSpec", "Problem", "Source"]
