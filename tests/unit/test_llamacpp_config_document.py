# ruff: noqa: I001  (the document's import block, as it is written)
# tests/builtins/test_llamacpp_config.py
import pytest
from launcher.worker.builtins.llamacpp import LlamaCppConfig


def test_config_validation_missing_path():
    config = LlamaCppConfig(model_path="")
    with pytest.raises(ValueError, match="model_path is required"):
        config.validate()


def test_config_validation_invalid_port():
    config = LlamaCppConfig(model_path="/tmp/model.gguf", port=0)
    with pytest.raises(ValueError, match="port must be between"):
        config.validate()


def test_config_from_yaml(tmp_path):
    config_file = tmp_path / "config.yaml"
    config_file.write_text("""
model_path: /models/test.gguf
name: test-model
n_ctx: 4096
port: 9000
""")

    config = LlamaCppConfig.from_yaml(str(config_file))
    assert config.model_path == "/models/test.gguf"
    assert config.name == "test-model"
    assert config.n_ctx == 4096
    assert config.port == 9000


# Above: the anyserve llama.cpp document's unit tests, verbatim but for the import line. Below: the rest of
# its validate(), which they do not reach.

def test_config_validation_missing_file(tmp_path):
    config = LlamaCppConfig(model_path=str(tmp_path / "absent.gguf"))
    with pytest.raises(FileNotFoundError, match="Model file not found"):
        config.validate()


@pytest.mark.parametrize("n_ctx", [0, -1])
def test_config_validation_context_must_be_positive(tmp_path, n_ctx):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(ValueError, match="n_ctx must be positive"):
        LlamaCppConfig(model_path=str(model), n_ctx=n_ctx).validate()
    LlamaCppConfig(model_path=str(model), n_ctx=1).validate()
