"""`launch export containerfile`: the image the exported manifests name. launcher is installed from the build
context (a launcher checkout), and llama.cpp is built while the image is built, by `launch build` with the
config the pods read, so the build lands under the same cache key the pods look up and no pod ever compiles.

    docker build -f Containerfile -t launcher:cann --build-arg BASE_IMAGE=ascendai/cann:<tag> .
"""
from __future__ import annotations

BASE_IMAGES = {
    # CANN's toolkit under /usr/local/Ascend (set_env.sh); pin a tag that matches the nodes' driver
    "cann": "ascendai/cann:latest",
    "cuda": "nvidia/cuda:12.4.1-devel-ubuntu22.04",
    "cpu": "python:3.11-slim-bookworm",
}
CACHE = "/opt/launcher/cache"
VENV = "/opt/launcher/venv"
BUILD_CONFIG = "/opt/launcher/build-config.yaml"


# What CANN's set_env.sh exports, as the image's own environment: the pods run `launch` directly (their command
# is a plain launch line), so nothing sources the script there.
CANN_ENV = ("ENV ASCEND_TOOLKIT_HOME=/usr/local/Ascend/ascend-toolkit/latest \\\n"
            "    ASCEND_HOME_PATH=/usr/local/Ascend/ascend-toolkit/latest \\\n"
            "    ASCEND_OPP_PATH=/usr/local/Ascend/ascend-toolkit/latest/opp \\\n"
            "    ASCEND_AICPU_PATH=/usr/local/Ascend/ascend-toolkit/latest \\\n"
            "    LD_LIBRARY_PATH=/usr/local/Ascend/ascend-toolkit/latest/lib64:/usr/local/Ascend/driver/lib64:"
            "/usr/local/Ascend/driver/lib64/common:/usr/local/Ascend/driver/lib64/driver \\\n"
            "    PATH=/usr/local/Ascend/ascend-toolkit/latest/bin:$PATH\n")


def containerfile(backend: str, build_config: str | None) -> str:
    """The Containerfile text. `build_config` is the pods' config (what `launch build --config` reads in the
    image); without one, the backend's default build."""
    setup = "source /usr/local/Ascend/ascend-toolkit/set_env.sh && " if backend == "cann" else ""
    if build_config is not None:
        config_step = f"COPY <<'LAUNCHER_CONFIG' {BUILD_CONFIG}\n{build_config.rstrip()}\nLAUNCHER_CONFIG\n"
        build = f"launch build --config {BUILD_CONFIG}"
    else:
        config_step = ""
        build = f"launch build --backend {backend}" + (" --portable" if backend == "cpu" else "")
    return f"""# syntax=docker/dockerfile:1.4
# The launcher image for {backend}: written by `launch export containerfile --backend {backend}`.
# Build it from a launcher checkout (the build context):
#   docker build -f Containerfile -t launcher:{backend} --build-arg BASE_IMAGE=... .
ARG BASE_IMAGE={BASE_IMAGES[backend]}
FROM ${{BASE_IMAGE}}

SHELL ["/bin/bash", "-c"]
# Compilers for llama.cpp, an ssh server for the MPI operator's workers (mpirun reaches them over ssh)
RUN if command -v apt-get >/dev/null; then \\
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
        python3 python3-venv python3-dev build-essential cmake git openssh-server ca-certificates && \\
      rm -rf /var/lib/apt/lists/* && mkdir -p /run/sshd; \\
    else \\
      yum install -y python3 python3-devel gcc gcc-c++ make cmake git openssh-server && yum clean all; \\
    fi

{CANN_ENV if backend == "cann" else ""}ENV LAUNCHER_CACHE_DIR={CACHE} PATH={VENV}/bin:$PATH
COPY . /opt/launcher/src
# The Python bindings without their own compile: they load the libllama of launcher's build
RUN python3 -m venv {VENV} && \\
    CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" {VENV}/bin/pip install --no-cache-dir "/opt/launcher/src[bindings]"
{config_step}# llama.cpp, built now under the cache key the pods' launch looks up (cann: build on an Ascend node, with
# its driver mounted: the build is not kept until the built server has answered one completion)
RUN {setup}{build}

EXPOSE 8080
CMD ["launch", "--config", "/etc/launcher/config.yaml"]
"""
