"""The management front: the Llama Switch API under /api/v1 (models, switch, stop, status, benchmarks)."""
