# plan for <repo>/tests/plan_configs/workers_npu.yaml
# backend: cann (the config names it)
# gateway: http://127.0.0.1:8080/v1 (runs inside launch)

# model 'qwen' (accepted names: qwen, qwen2.5-7b-q8_0.gguf, qwen2.5-7b-q8_0), mode single
# capabilities: {type=chat, model=qwen}, {type=completion, model=qwen}, {type=chat, lang=zh, model=qwen}
# qwen#0: health http://127.0.0.1:30001/health
env ASCEND_RT_VISIBLE_DEVICES=0 /opt/llama/bin/llama-server --model /data/models/qwen2.5-7b-q8_0.gguf --alias qwen --host 127.0.0.1 --port 30001 &

# worker 'rerank': 2 process(es)
# rerank#0: health http://127.0.0.1:30002/health
env RERANK_BATCH=16 LAUNCHER_GATEWAY=http://127.0.0.1:8080 ASCEND_RT_VISIBLE_DEVICES=1 /opt/venv/bin/python -m launcher.worker myworkers.rerank:create_app --factory --host 127.0.0.1 --port 30002 --name rerank --threads 2 --path <repo>/examples &
# rerank#1: health http://127.0.0.1:30003/health
env RERANK_BATCH=16 LAUNCHER_GATEWAY=http://127.0.0.1:8080 ASCEND_RT_VISIBLE_DEVICES=1 /opt/venv/bin/python -m launcher.worker myworkers.rerank:create_app --factory --host 127.0.0.1 --port 30003 --name rerank --threads 2 --path <repo>/examples &

# worker 'gemma-py': 1 process(es)
# gemma-py#0: health http://127.0.0.1:30004/health
env LAUNCHER_LLAMACPP_MODEL=embedded:gemma3-270m LAUNCHER_GATEWAY=http://127.0.0.1:8080 /opt/venv/bin/python -m launcher.worker launcher.worker.builtins.llamacpp:create_app --factory --host 127.0.0.1 --port 30004 --name gemma-py --threads 4 --path <repo>/tests/plan_configs &
