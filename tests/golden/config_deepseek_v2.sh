# plan for <repo>/configs/config_deepseek_v2.yaml
# backend: cann (engine.flavor ascend-fork runs on Ascend NPUs)
# gateway: http://127.0.0.1:8080/v1 (runs inside launch)

# model 'deepseek-v2' (accepted names: deepseek-v2, DeepSeek-V2-Chat-Q4_0.gguf, DeepSeek-V2-Chat-Q4_0), mode layer
# capabilities: {type=chat, model=deepseek-v2}, {type=completion, model=deepseek-v2}
# note: split_mode layer: a layer split over the 8 NPUs [0, 1, 2, 3, 4, 5, 6, 7] (assumed), as the Ascend guide runs it
mkdir -p /run/launcher
cat > /run/launcher/deepseek-v2-0.fork.yaml <<'LAUNCHER_EOF'
model: /srv/models/DeepSeek-V2-Chat-Q4_0.gguf
model_alias: deepseek-v2
n_ctx: 16384
n_batch: 2048
n_parallel: 4
n_gpu_layers: 99
main_gpu: 0
split_mode: layer
hostname: 127.0.0.1
port: 30001
LAUNCHER_EOF
# deepseek-v2#0: health http://127.0.0.1:30001/health
env ASCEND_RT_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 /opt/llama-ascend/bin/llama-server --config /run/launcher/deepseek-v2-0.fork.yaml &
