# The Ascend llama-server guide's Python client (shared/reference/002_a88fb7ad9a6e7a44.txt), verbatim
# below this comment block. tests/e2e/test_documents_real.py runs it against launcher.

import requests
import json
import sseclient

# 聊天完成（流式）
def chat_completion_stream():
    url = "http://127.0.0.1:8080/v1/chat/completions"
    headers = {"Content-Type": "application/json"}
    data = {
        "model": "DeepSeek-V2-Lite",
        "messages": [
            {"role": "system", "content": "你是一个有用的AI助手。"},
            {"role": "user", "content": "请简要介绍一下中国的历史。"}
        ],
        "temperature": 0.7,
        "stream": True
    }
    
    response = requests.post(url, headers=headers, json=data, stream=True)
    client = sseclient.SSEClient(response)
    
    for event in client.events():
        if event.data != "[DONE]":
            chunk = json.loads(event.data)
            content = chunk["choices"][0]["delta"].get("content", "")
            print(content, end="", flush=True)
        else:
            print("\n[完成]")

# 文本补全（非流式）
def text_completion():
    url = "http://127.0.0.1:8080/v1/completions"
    headers = {"Content-Type": "application/json"}
    data = {
        "model": "DeepSeek-V2-Lite",
        "prompt": "人工智能的未来发展趋势是",
        "temperature": 0.7,
        "max_tokens": 1024,
        "stream": False
    }
    
    response = requests.post(url, headers=headers, json=data)
    result = response.json()
    print(result["choices"][0]["text"])

# 运行示例
if __name__ == "__main__":
    print("流式聊天示例：")
    chat_completion_stream()
    
    print("\n文本补全示例：")
    text_completion()
