"""launcher's Python-side bindings to native libraries: llama-cpp-python on launcher's own build.

    check_bindings(tree)      env that makes the bindings load a build's libllama (version-checked)
    LlamaCppEngine            a model loaded in this process: load, generate, generate_stream
"""
from .engine import Chunk, Completion, LlamaCppConfig, LlamaCppEngine
from .llama_cpp_python import check_bindings, installed_version

__all__ = ["LlamaCppEngine", "LlamaCppConfig", "Completion", "Chunk", "check_bindings", "installed_version"]
