"""launcher: serve GGUF models with llama.cpp (and Python workers) from one YAML file."""
import os

# Children are started with fork+exec while gRPC's threads run; gRPC's fork handlers are not needed
# for an exec'd child and only log "skipping fork() handlers". Set before anything imports grpc.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
