# plan for /configs/guide_layer.yaml
# backend: cann (npu-smi lists 8 NPU(s))
# gateway: http://127.0.0.1:8080/v1 (runs inside launch)

# model 'DeepSeek-V2-Chat-Q4_0' (accepted names: DeepSeek-V2-Chat-Q4_0, DeepSeek-V2-Chat-Q4_0.gguf), mode layer
# capabilities: {type=chat, model=DeepSeek-V2-Chat-Q4_0}, {type=completion, model=DeepSeek-V2-Chat-Q4_0}
# note: split_mode layer: a layer split over the 8 NPUs [0, 1, 2, 3, 4, 5, 6, 7] (ASCEND_RT_VISIBLE_DEVICES=0,1,2,3,4,5,6,7), as the Ascend guide runs it
# note: chat template: deepseek2 (llama-server's built-in for deepseek2; the GGUF carries none)
# DeepSeek-V2-Chat-Q4_0#0: health http://127.0.0.1:30001/health
env ASCEND_RT_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 /opt/llama/bin/llama-server --model /srv/models/DeepSeek-V2-Chat-Q4_0.gguf --alias DeepSeek-V2-Chat-Q4_0 --host 127.0.0.1 --port 30001 --ctx-size 16384 --parallel 4 --n-gpu-layers 99 --split-mode layer --chat-template deepseek2 --tensor-split 65536,65536,65536,65536,65536,65536,65536,65536 &
