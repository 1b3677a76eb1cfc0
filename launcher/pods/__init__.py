"""`launch` in a pod: the role an operator gave this pod, read from what it injects (roles.py), and how each
role runs (leader_worker.py for a LeaderWorkerSet's llama.cpp RPC group, ascend_job.py for ascend-operator's
EP+TP job). The manifests of `launch export k8s` run the same plain `launch --config` line in every pod.

A Kubeflow MPIJob needs nothing here: its launcher pod runs `mpirun -np N launch --config`, which is the
user's-mpirun path (cli/under_mpirun.py)."""
