"""The anyserve llama.cpp document's user-written worker (架构说明), verbatim but for the import lines
(anyserve -> launcher.worker, and `extract_prompt`, which the document uses without importing) and the
model path (the document's /models/model.gguf -> MODEL_PATH, the embedded Gemma)."""
from launcher.models.embedded import ensure

MODEL_PATH = str(ensure("gemma3-270m"))

# 用户自定义 worker 的写法
from launcher.worker import AnyServe
from launcher.worker.builtins.llamacpp import LlamaCppEngine, extract_prompt

app = AnyServe()
engine = LlamaCppEngine(model_path=MODEL_PATH)
engine.load()

@app.capability(type="completion", model="my-model")
def completion_handler(request, context):
    prompt = extract_prompt(request)
    return engine.generate(prompt)

# 使用 anyserve 运行
# anyserve app:app
