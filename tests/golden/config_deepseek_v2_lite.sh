# plan for <repo>/configs/config_deepseek_v2_lite.yaml
# backend: cann (the config names it)
# gateway: http://127.0.0.1:8080/v1 (runs inside launch)

# model 'deepseek-v2-lite' (accepted names: deepseek-v2-lite, DeepSeek-V2-Lite-Chat-Q8_0.gguf, DeepSeek-V2-Lite-Chat-Q8_0), mode single
# capabilities: {type=chat, model=deepseek-v2-lite}, {type=completion, model=deepseek-v2-lite}
# deepseek-v2-lite#0: health http://127.0.0.1:30001/health
env ASCEND_RT_VISIBLE_DEVICES=0 GGML_CANN_MEM_POOL=vmm /opt/llama/bin/llama-server --model /data/models/DeepSeek-V2-Lite-Chat-Q8_0.gguf --alias deepseek-v2-lite --host 127.0.0.1 --port 30001 --ctx-size 8192 --batch-size 2048 --ubatch-size 512 --parallel 4 --n-gpu-layers 99 --main-gpu 0 --split-mode none --load-mode mmap &
