# plan for <repo>/configs/config_deepseek_v2.yaml
# backend: cann (the config names it)
# gateway: http://127.0.0.1:8080/v1 (runs inside launch)

# model 'deepseek-v2' (accepted names: deepseek-v2, DeepSeek-V2-Chat-Q4_0.gguf, DeepSeek-V2-Chat-Q4_0), mode layer
# capabilities: {type=chat, model=deepseek-v2}, {type=completion, model=deepseek-v2}
# deepseek-v2#0: health http://127.0.0.1:30001/health
env ASCEND_RT_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 /opt/llama/bin/llama-server --model /data/models/DeepSeek-V2-Chat-Q4_0.gguf --alias deepseek-v2 --host 127.0.0.1 --port 30001 --ctx-size 16384 --batch-size 2048 --parallel 4 --n-gpu-layers 99 --main-gpu 0 --split-mode layer --tensor-split 1,1,1,1,1,1,1,1 &
