# plan for <repo>/configs/config_rpc_2ranks.yaml
# backend: cpu (the config names it)
# gateway: http://127.0.0.1:8080/v1 (runs inside launch)

# model 'gemma3-270m-rpc' (accepted names: gemma3-270m-rpc), mode rpc
# capabilities: {type=chat, model=gemma3-270m-rpc}, {type=completion, model=gemma3-270m-rpc}
# note: ggml RPC is unauthenticated: keep rpc_host on a private network
mkdir -p /run/launcher
cat > /run/launcher/gemma3-270m-rpc.ranks.json <<'LAUNCHER_EOF'
{
 "model": "gemma3-270m-rpc",
 "multi_host": false,
 "device_env": null,
 "device_ids": [],
 "ranks": [
  {
   "name": "gemma3-270m-rpc.rank0",
   "role": "rank",
   "argv": [
    "/opt/llama/bin/llama-server",
    "--model",
    "/cache/launcher/models/gemma-3-270m-Q4_K_M.gguf",
    "--alias",
    "gemma3-270m-rpc",
    "--host",
    "127.0.0.1",
    "--port",
    "30001",
    "--ctx-size",
    "4096",
    "--parallel",
    "2",
    "--seed",
    "42",
    "--rpc",
    "127.0.0.1:50052",
    "--n-gpu-layers",
    "all"
   ],
   "env": [],
   "port": 30001,
   "health_url": "http://127.0.0.1:30001/health",
   "rank": 0,
   "devices": [],
   "host": "127.0.0.1"
  },
  {
   "name": "gemma3-270m-rpc.rank1",
   "role": "rank",
   "argv": [
    "/opt/llama/bin/ggml-rpc-server",
    "--host",
    "127.0.0.1",
    "--port",
    "50052"
   ],
   "env": [],
   "port": 50052,
   "health_url": null,
   "rank": 1,
   "devices": [],
   "host": "127.0.0.1"
  }
 ],
 "hosts": []
}
LAUNCHER_EOF
# gemma3-270m-rpc.mpirun: health http://127.0.0.1:30001/health
env LAUNCHER_JOB=gemma3-270m-rpc@30001 /opt/venv/bin/mpirun -np 2 --allow-run-as-root --bind-to none --oversubscribe -x LAUNCHER_JOB /opt/venv/bin/python -m launcher rank /run/launcher/gemma3-270m-rpc.ranks.json &
#   rank 0 runs: /opt/llama/bin/llama-server --model /cache/launcher/models/gemma-3-270m-Q4_K_M.gguf --alias gemma3-270m-rpc --host 127.0.0.1 --port 30001 --ctx-size 4096 --parallel 2 --seed 42 --rpc 127.0.0.1:50052 --n-gpu-layers all
#   rank 1 runs: /opt/llama/bin/ggml-rpc-server --host 127.0.0.1 --port 50052
