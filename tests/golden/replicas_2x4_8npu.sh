# plan for <repo>/tests/plan_configs/replicas_2x4_8npu.yaml
# backend: cann (the config names it)
# gateway: http://127.0.0.1:8080/v1 (runs inside launch)

# model 'qwen2-7b' (accepted names: qwen2-7b, Qwen2-7B-Instruct-Q8_0.gguf, Qwen2-7B-Instruct-Q8_0), mode replicas
# capabilities: {type=chat, model=qwen2-7b}, {type=completion, model=qwen2-7b}
# qwen2-7b#0: health http://127.0.0.1:30001/health
env ASCEND_RT_VISIBLE_DEVICES=0,1,2,3 /opt/llama/bin/llama-server --model /data/models/Qwen2-7B-Instruct-Q8_0.gguf --alias qwen2-7b --host 127.0.0.1 --port 30001 --ctx-size 8192 --parallel 4 --n-gpu-layers 99 --split-mode layer --tensor-split 1,1,1,1 &
# qwen2-7b#1: health http://127.0.0.1:30002/health
env ASCEND_RT_VISIBLE_DEVICES=4,5,6,7 /opt/llama/bin/llama-server --model /data/models/Qwen2-7B-Instruct-Q8_0.gguf --alias qwen2-7b --host 127.0.0.1 --port 30002 --ctx-size 8192 --parallel 4 --n-gpu-layers 99 --split-mode layer --tensor-split 1,1,1,1 &
