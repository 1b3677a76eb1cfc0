# plan for <repo>/configs/config_deepseek_v2_lite.yaml
# backend: cann (engine.flavor ascend-fork runs on Ascend NPUs)
# gateway: http://127.0.0.1:8080/v1 (runs inside launch)

# model 'deepseek-v2-lite' (accepted names: deepseek-v2-lite, DeepSeek-V2-Lite-Chat-Q8_0.gguf, DeepSeek-V2-Lite-Chat-Q8_0), mode single
# capabilities: {type=chat, model=deepseek-v2-lite}, {type=completion, model=deepseek-v2-lite}
# note: one NPU: NPU 0, main_gpu 0 of [0, 1, 2, 3, 4, 5, 6, 7] (assumed)
mkdir -p /run/launcher
cat > /run/launcher/deepseek-v2-lite-0.fork.yaml <<'LAUNCHER_EOF'
model: /srv/models/DeepSeek-V2-Lite-Chat-Q8_0.gguf
model_alias: deepseek-v2-lite
n_ctx: 8192
n_batch: 2048
n_parallel: 4
n_gpu_layers: 99
main_gpu: 0
split_mode: none
use_mmap: true
hostname: 127.0.0.1
port: 30001
LAUNCHER_EOF
# deepseek-v2-lite#0: health http://127.0.0.1:30001/health
env ASCEND_RT_VISIBLE_DEVICES=0 GGML_CANN_MEM_POOL=vmm /opt/llama-ascend/bin/llama-server --config /run/launcher/deepseek-v2-lite-0.fork.yaml &
