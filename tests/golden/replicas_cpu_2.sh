# plan for <repo>/tests/plan_configs/replicas_cpu_2.yaml
# backend: cpu (--assume-devices cpu)
# gateway: http://127.0.0.1:8080/v1 (runs inside launch)

# model 'gemma' (accepted names: gemma), mode replicas
# capabilities: {type=chat, model=gemma}, {type=completion, model=gemma}
# gemma#0: health http://127.0.0.1:30001/health
env OMP_NUM_THREADS=1 /opt/llama/bin/llama-server --model /cache/launcher/models/gemma-3-270m-Q4_K_M.gguf --alias gemma --host 127.0.0.1 --port 30001 --parallel 2 --threads 1 &
# gemma#1: health http://127.0.0.1:30002/health
env OMP_NUM_THREADS=1 /opt/llama/bin/llama-server --model /cache/launcher/models/gemma-3-270m-Q4_K_M.gguf --alias gemma --host 127.0.0.1 --port 30002 --parallel 2 --threads 1 &
