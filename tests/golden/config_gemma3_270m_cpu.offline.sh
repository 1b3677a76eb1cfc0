# plan for <repo>/configs/config_gemma3_270m_cpu.yaml
# backend: cpu (the config names it)
# gateway: http://127.0.0.1:8080/v1 (runs inside launch)

# model 'gemma3-270m' (accepted names: gemma3-270m), mode single
# capabilities: {type=chat, model=gemma3-270m}, {type=completion, model=gemma3-270m}
# gemma3-270m#0: health http://127.0.0.1:30001/health
/opt/llama/bin/llama-server --model /cache/launcher/models/gemma-3-270m-Q4_K_M.gguf --alias gemma3-270m --host 127.0.0.1 --port 30001 --ctx-size 8192 --batch-size 512 --parallel 4 &
