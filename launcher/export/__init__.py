"""`launch export`: what a cluster runs, made from one config.

    pod_config.py     the config as a pod reads it (model under /models, bound to 0.0.0.0, no host device ids)
    k8s.py            the Kubernetes objects: one host (Deployment), llama.cpp RPC (LeaderWorkerSet),
                      EP+TP over HCCL (MindCluster AscendJob, or Kubeflow MPIJob)
    containerfile.py  the image those objects name

The pods run `launch` itself (pods/ reads what the operator injects), so what it checks and serves stays
the same as on a host.
"""
