"""The stand-in for the CANN `llama-server` / `llama-mpi-server` on the simulated Ascend host (ascend_host.py).

It records what it was started with (argv, the Ascend/HCCL/MPI environment, the YAML of `--config`) as one JSON
line in $STANDIN_RECORD, then serves OpenAI as launcher's fake engine on the port it was given (rank 0, or a
process outside mpirun); the other ranks of an mpirun job wait, as the fork's followers do, until stopped.
`--help` prints the real llama-server's help, recorded from launcher's build (the flags launcher checks against).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time

import yaml

RECORD_ENV = "STANDIN_RECORD"
HELP_ENV = "STANDIN_HELP"
KEPT = ("ASCEND_", "HCCL_", "RANK_TABLE_FILE", "OMPI_COMM_WORLD_", "GGML_CANN_", "LAUNCHER_JOB")


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv and argv.index(name) + 1 < len(argv) else None


def main(argv: list[str]) -> int:
    if "--help" in argv or "-h" in argv:
        with open(os.environ[HELP_ENV]) as fh:
            sys.stdout.write(fh.read())
        return 0
    config_path = _flag(argv, "--config")
    config = yaml.safe_load(open(config_path)) if config_path else None
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    record = {"program": os.path.basename(argv[0]), "argv": argv, "rank": rank, "pid": os.getpid(),
              "env": {k: v for k, v in os.environ.items() if k.startswith(KEPT)}, "config": config}
    with open(os.environ[RECORD_ENV], "a") as fh:  # one short append per process: lines do not interleave
        fh.write(json.dumps(record) + "\n")
    if rank > 0:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        while True:
            time.sleep(3600)
    port = _flag(argv, "--port") or str((config or {}).get("port"))
    host = _flag(argv, "--host") or (config or {}).get("hostname") or "127.0.0.1"
    os.execv(sys.executable, [sys.executable, "-m", "launcher.testing.fake_engine", "--port", port, "--host", host])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))  # argv[1] is the program's own path (its wrapper passes it)
