"""A chat template for a model whose GGUF carries none. llama-server then falls back to ChatML, which models
not trained on it answer with template tokens (the embedded Gemma 3 270M prints `<|im_end|><|im_start|>`);
llama-server has its architecture's template built in (`--chat-template gemma`), so launcher names it."""
from __future__ import annotations

from dataclasses import replace

from ..config.model import ModelSpec
from ..gguf_info import header_of
from ..models.embedded import model_file

# GGUF architecture -> llama-server's built-in template of that family (llama.cpp src/llama-chat.cpp)
BUILTIN = {"gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "gemma3n": "gemma", "qwen2": "chatml",
           "qwen3": "chatml", "deepseek2": "deepseek2", "phi3": "phi3"}


def with_chat_template(spec: ModelSpec) -> tuple[ModelSpec, str | None]:
    """(the spec, a note) with the built-in template of its architecture when the config names none and the
    GGUF has none; the note says which, or that ChatML will be used. Unreadable headers change nothing."""
    if spec.params.chat_template or spec.params.jinja:
        return spec, None
    try:
        meta, _ = header_of(model_file(spec))
    except (OSError, ValueError, KeyError):
        return spec, None
    if meta.get("tokenizer.chat_template"):
        return spec, None
    arch = meta.get("general.architecture")
    name = BUILTIN.get(arch)
    if name is None:
        return spec, (f"chat template: the GGUF has none and launcher knows no built-in one for {arch!r}: "
                      "llama-server falls back to ChatML; set chat_template if the model's answers show template "
                      "tokens")
    return (replace(spec, params=replace(spec.params, chat_template=name)),
            f"chat template: {name} (llama-server's built-in for {arch}; the GGUF carries none)")
