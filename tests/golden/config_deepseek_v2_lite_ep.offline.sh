# plan for <repo>/configs/config_deepseek_v2_lite_ep.yaml
# backend: cann (the config names it)
# gateway: http://127.0.0.1:8080/v1 (runs inside launch)

# model 'deepseek-v2-lite' (accepted names: deepseek-v2-lite, DeepSeek-V2-Lite-Chat-Q8_0.gguf, DeepSeek-V2-Lite-Chat-Q8_0), mode ep_tp
# capabilities: {type=chat, model=deepseek-v2-lite}, {type=completion, model=deepseek-v2-lite}
# note: planned without the target machine: cann devices [0, 1] as the config lists them, not checked
# note: rank 0 of llama-mpi-server serves HTTP; the other ranks follow its batches
mkdir -p /run/launcher
cat > /run/launcher/deepseek-v2-lite.fork.yaml <<'LAUNCHER_EOF'
model: /srv/models/DeepSeek-V2-Lite-Chat-Q8_0.gguf
model_alias: deepseek-v2-lite
n_ctx: 8192
n_batch: 2048
n_parallel: 4
n_gpu_layers: 99
enable_mla: true
enable_fused_moe: true
offload_input: true
enable_ge: false
display_chat: false
presample_count: -1
hostname: 127.0.0.1
port: 30001
tp_size: 2
dp_size: 1
ep_size: 2
moe_tp_size: 1
LAUNCHER_EOF
mkdir -p /run/launcher
cat > /run/launcher/deepseek-v2-lite.hccl.json <<'LAUNCHER_EOF'
{
 "version": "1.0",
 "server_count": "1",
 "server_list": [
  {
   "server_id": "127.0.0.1",
   "device": [
    {
     "device_id": "0",
     "device_ip": "192.168.100.101",
     "rank_id": "0"
    },
    {
     "device_id": "1",
     "device_ip": "192.168.100.102",
     "rank_id": "1"
    }
   ],
   "host_nic_ip": "reserve"
  }
 ],
 "status": "completed"
}
LAUNCHER_EOF
# deepseek-v2-lite.mpirun: health http://127.0.0.1:30001/health
env LAUNCHER_JOB=deepseek-v2-lite@30001 /opt/venv/bin/mpirun -np 2 --allow-run-as-root --bind-to none -x ASCEND_RT_VISIBLE_DEVICES=0,1 -x RANK_TABLE_FILE=/run/launcher/deepseek-v2-lite.hccl.json -x HCCL_CONNECT_TIMEOUT=600 -x LAUNCHER_JOB /opt/llama-ascend/bin/llama-mpi-server --config /run/launcher/deepseek-v2-lite.fork.yaml &
