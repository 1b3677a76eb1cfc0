"""The programs launcher runs, by CMake target name (= file name in the build's bin/): the one table of them.
Each engine kind names the ones it needs; the build makes them all."""
from __future__ import annotations

LLAMA_SERVER, RPC_SERVER, LLAMA_BENCH, LLAMA_QUANTIZE = "llama-server", "ggml-rpc-server", "llama-bench", "llama-quantize"
MPI_SERVER = "llama-mpi-server"  # only in the Ascend fork's tree
