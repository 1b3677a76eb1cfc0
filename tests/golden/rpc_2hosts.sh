# plan for <repo>/tests/plan_configs/rpc_2hosts.yaml
# backend: cann (the config names it)
# gateway: http://127.0.0.1:8080/v1 (runs inside launch)

# model 'qwen2-7b' (accepted names: qwen2-7b, Qwen2-7B-Instruct-Q8_0.gguf, Qwen2-7B-Instruct-Q8_0), mode rpc
# capabilities: {type=chat, model=qwen2-7b}, {type=completion, model=qwen2-7b}
# note: ggml RPC is unauthenticated: keep rpc_host on a private network
# note: ranks by host (mpirun --map-by slot): npu-a: rank 0; npu-b: rank 1
# note: every host needs these at the same paths (a shared filesystem, or copies): /data/models/Qwen2-7B-Instruct-Q8_0.gguf, /opt/llama/bin/llama-server, /opt/llama/bin/ggml-rpc-server, /opt/venv/bin/python (with launcher installed), /run/launcher/qwen2-7b.ranks.json
mkdir -p /run/launcher
cat > /run/launcher/qwen2-7b.ranks.json <<'LAUNCHER_EOF'
{
 "model": "qwen2-7b",
 "multi_host": true,
 "device_env": "ASCEND_RT_VISIBLE_DEVICES",
 "device_ids": [
  0
 ],
 "ranks": [
  {
   "name": "qwen2-7b.rank0",
   "role": "rank",
   "argv": [
    "/opt/llama/bin/llama-server",
    "--model",
    "/data/models/Qwen2-7B-Instruct-Q8_0.gguf",
    "--alias",
    "qwen2-7b",
    "--host",
    "127.0.0.1",
    "--port",
    "30001",
    "--n-gpu-layers",
    "99",
    "--rpc",
    "{host:1}:50052"
   ],
   "env": [
    [
     "ASCEND_RT_VISIBLE_DEVICES",
     "0"
    ]
   ],
   "port": 30001,
   "health_url": "http://127.0.0.1:30001/health",
   "rank": 0,
   "devices": [
    0
   ],
   "host": "127.0.0.1"
  },
  {
   "name": "qwen2-7b.rank1",
   "role": "rank",
   "argv": [
    "/opt/llama/bin/ggml-rpc-server",
    "--host",
    "{host}",
    "--port",
    "50052"
   ],
   "env": [
    [
     "ASCEND_RT_VISIBLE_DEVICES",
     "0"
    ]
   ],
   "port": 50052,
   "health_url": null,
   "rank": 1,
   "devices": [
    0
   ],
   "host": "{host}"
  }
 ],
 "hosts": [
  "npu-a",
  "npu-b"
 ]
}
LAUNCHER_EOF
# qwen2-7b.mpirun: health http://127.0.0.1:30001/health
env LAUNCHER_JOB=qwen2-7b@30001 /opt/venv/bin/mpirun -np 2 --hostfile <repo>/tests/plan_configs/hosts.txt --allow-run-as-root --bind-to none -x LAUNCHER_JOB /opt/venv/bin/python -m launcher rank /run/launcher/qwen2-7b.ranks.json &
#   rank 0 runs: env ASCEND_RT_VISIBLE_DEVICES=0 /opt/llama/bin/llama-server --model /data/models/Qwen2-7B-Instruct-Q8_0.gguf --alias qwen2-7b --host 127.0.0.1 --port 30001 --n-gpu-layers 99 --rpc '{host:1}:50052'
#   rank 1 runs: env ASCEND_RT_VISIBLE_DEVICES=0 /opt/llama/bin/ggml-rpc-server --host '{host}' --port 50052
