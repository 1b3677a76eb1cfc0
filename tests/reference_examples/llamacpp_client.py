from launcher.worker.client import AnyServeClient

client = AnyServeClient("localhost:8000")

# 非流式调用
response = client.infer(
    model_name="llama-7b",
    inputs={
        "prompt": "Once upon a time",
        "max_tokens": 100,
        "temperature": 0.8,
    }
)
print(response.outputs["text_output"])

# 流式调用
for chunk in client.infer_stream(
    model_name="llama-7b",
    inputs={
        "prompt": "Once upon a time",
        "max_tokens": 100,
    }
):
    print(chunk.outputs["text_output"], end="", flush=True)
