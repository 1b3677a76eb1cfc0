# plan for <repo>/tests/plan_configs/ep_tp_hccl_2x8.yaml
# backend: cann (the config names it)
# gateway: http://127.0.0.1:8080/v1 (runs inside launch)

# model 'deepseek-v2' (accepted names: deepseek-v2, DeepSeek-V2-Chat-Q4_0.gguf, DeepSeek-V2-Chat-Q4_0), mode ep_tp
# capabilities: {type=chat, model=deepseek-v2}, {type=completion, model=deepseek-v2}
# note: rank 0 of llama-mpi-server serves HTTP; the other ranks follow its batches
# note: ranks by host (mpirun --map-by slot): 10.0.0.1: ranks 0-7; 10.0.0.2: ranks 8-15
# note: every host needs these at the same paths (a shared filesystem, or copies): /data/models/DeepSeek-V2-Chat-Q4_0.gguf, /opt/llama-ascend/bin/llama-mpi-server, /run/launcher/deepseek-v2.fork.yaml, /run/launcher/deepseek-v2.hccl.json
mkdir -p /run/launcher
cat > /run/launcher/deepseek-v2.fork.yaml <<'LAUNCHER_EOF'
model: /data/models/DeepSeek-V2-Chat-Q4_0.gguf
model_alias: deepseek-v2
n_ctx: 8192
n_gpu_layers: 99
enable_mla: true
hostname: 127.0.0.1
port: 30001
tp_size: 16
dp_size: 1
ep_size: 16
moe_tp_size: 1
LAUNCHER_EOF
mkdir -p /run/launcher
cat > /run/launcher/deepseek-v2.hccl.json <<'LAUNCHER_EOF'
{
 "version": "1.0",
 "server_count": "2",
 "server_list": [
  {
   "server_id": "10.0.0.1",
   "device": [
    {
     "device_id": "0",
     "device_ip": "192.168.100.101",
     "rank_id": "0"
    },
    {
     "device_id": "1",
     "device_ip": "192.168.101.101",
     "rank_id": "1"
    },
    {
     "device_id": "2",
     "device_ip": "192.168.102.101",
     "rank_id": "2"
    },
    {
     "device_id": "3",
     "device_ip": "192.168.103.101",
     "rank_id": "3"
    },
    {
     "device_id": "4",
     "device_ip": "192.168.100.100",
     "rank_id": "4"
    },
    {
     "device_id": "5",
     "device_ip": "192.168.101.100",
     "rank_id": "5"
    },
    {
     "device_id": "6",
     "device_ip": "192.168.102.100",
     "rank_id": "6"
    },
    {
     "device_id": "7",
     "device_ip": "192.168.103.100",
     "rank_id": "7"
    }
   ],
   "host_nic_ip": "reserve"
  },
  {
   "server_id": "10.0.0.2",
   "device": [
    {
     "device_id": "0",
     "device_ip": "192.168.100.103",
     "rank_id": "8"
    },
    {
     "device_id": "1",
     "device_ip": "192.168.101.103",
     "rank_id": "9"
    },
    {
     "device_id": "2",
     "device_ip": "192.168.102.103",
     "rank_id": "10"
    },
    {
     "device_id": "3",
     "device_ip": "192.168.103.103",
     "rank_id": "11"
    },
    {
     "device_id": "4",
     "device_ip": "192.168.100.102",
     "rank_id": "12"
    },
    {
     "device_id": "5",
     "device_ip": "192.168.101.102",
     "rank_id": "13"
    },
    {
     "device_id": "6",
     "device_ip": "192.168.102.102",
     "rank_id": "14"
    },
    {
     "device_id": "7",
     "device_ip": "192.168.103.102",
     "rank_id": "15"
    }
   ],
   "host_nic_ip": "reserve"
  }
 ],
 "status": "completed"
}
LAUNCHER_EOF
# deepseek-v2.mpirun: health http://127.0.0.1:30001/health
env LAUNCHER_JOB=deepseek-v2@30001 /opt/venv/bin/mpirun -np 16 --hostfile <repo>/tests/plan_configs/hosts_2x8.txt --allow-run-as-root --bind-to none -x ASCEND_RT_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 -x RANK_TABLE_FILE=/run/launcher/deepseek-v2.hccl.json -x HCCL_CONNECT_TIMEOUT=1200 -x HCCL_EXEC_TIMEOUT=3600 -x HCCL_SOCKET_IFNAME=enp189s0f0 -x HCCL_BUFFSIZE=400 -x LAUNCHER_JOB /opt/llama-ascend/bin/llama-mpi-server --config /run/launcher/deepseek-v2.fork.yaml &
