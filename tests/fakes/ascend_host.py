"""A simulated Ascend host: the hardware is simulated, the software above it runs for real.

- `npu-smi` and `hccn_tool` are stand-ins that replay recorded outputs (tests/fixtures/ascend: eight 910B3,
  one unhealthy, one busy; tests/fixtures: 910 with two chips per NPU, 310P).
- A CANN install tree as the installers leave it: the driver's and firmware's version.info, the toolkit's
  ascend_toolkit_install.info under `ascend-toolkit/<version>`, `latest`, and `set_env.sh`; without the
  development headers unless asked, so a CANN build is refused the way it is on a runtime-only host.
- The stand-in engine (standin_engine.py) as the fork's `llama-server` and `llama-mpi-server`.
- Inside `run()`, a private mount namespace lays that tree over /usr/local (npu-smi in /usr/local/sbin, CANN in
  /usr/local/Ascend, the engines in /usr/local/llama.cpp-ascend/build/bin) and a folder over /srv (models);
  with a network namespace as well, the documents' fixed 127.0.0.1:8080 is free.
In-process code (golden plans) uses only the tools: `tools_env()` puts them on PATH.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from gguf import LlamaFileType

from tests.unit.gguf_fixture import write_tiny_gguf

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
STANDIN = Path(__file__).with_name("standin_engine.py")
ENGINE_DIR = "/usr/local/llama.cpp-ascend/build/bin"
RECORDED_DRIVER = "25.2.0"
CHIPS = {  # scenario -> (npu-smi info recording, NPU ids)
    "910b3x8": (FIXTURES / "ascend" / "npu_smi_info_910b3x8.txt", range(8)),
    "910b3x8_unhealthy": (FIXTURES / "ascend" / "npu_smi_info_910b3x8_unhealthy.txt", range(8)),
    "910b3x8_busy": (FIXTURES / "ascend" / "npu_smi_info_910b3x8_busy.txt", range(8)),
    "910_2chips": (FIXTURES / "npu_smi_info_910_2chips.txt", range(2)),
    "310p": (FIXTURES / "npu_smi_info_310p.txt", range(2)),
}


def _script(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)


def _replayer(replay: Path, tool: str) -> str:
    return (f"import pathlib, sys\nkey = '_'.join(sys.argv[1:]) or 'info'\n"
            f"f = pathlib.Path({str(replay)!r}) / ({tool!r} + '_' + key + '.txt')\n"
            f"if not f.is_file():\n    sys.exit(f'{tool} (simulated): no recording for ' + ' '.join(sys.argv[1:]))\n"
            "sys.stdout.write(f.read_text())\n")


def _only_chips(text: str, ids) -> str:
    """An `npu-smi info` recording as a container given only chips `ids` sees it."""
    lines, out, skip = text.splitlines(keepends=True), [], 0
    for n, line in enumerate(lines):
        if skip:
            skip -= 1
            continue
        cells = line.strip("|\n ").split()
        chip_row = len(lines) > n + 2 and cells[:1] and cells[0].isdigit() and "910" in line
        process_row = "No running processes found in NPU" in line
        npu = int(cells[0]) if chip_row else int(line.split("NPU")[1].split()[0]) if process_row else None
        if npu is not None and npu not in ids:
            skip = 2 if chip_row else 1     # the chip's second row and its separator / the separator
            continue
        out.append(line)
    return "".join(out)


class AscendHost:
    def __init__(self, root: Path, chips: str = "910b3x8", driver: str = RECORDED_DRIVER, toolkit: str = "8.2.RC1",
                 sourced: bool = True, headers: bool = False, given: tuple[int, ...] | None = None,
                 hbm_mib: tuple[int, int] | None = None):
        """`given`: the chips a container was given (Ascend Docker Runtime mounts only those; npu-smi in it
        lists them under their own NPU ids). `hbm_mib`: (in use, capacity) of every chip's HBM instead of the
        recording's (small NPUs, for tests of placement)."""
        self.root, self.chips, self.driver, self.toolkit = root, chips, driver, toolkit
        self.given, self.hbm_mib = given, hbm_mib
        self.sourced, self.headers = sourced, headers
        self.tools, self.replay = root / "tools", root / "replay"
        self.upper, self.work, self.srv = root / "upper", root / "work", root / "srv"
        self.record = root / "engines.jsonl"
        self._build()

    def _build(self) -> None:
        info, ids = CHIPS[self.chips]
        self.replay.mkdir(parents=True)
        # The recordings are of driver 25.2.0; another driver shows its own version in the same places.
        text = info.read_text().replace(RECORDED_DRIVER, self.driver)
        if self.given is not None:
            ids = [i for i in ids if i in self.given]
            text = _only_chips(text, ids)
        memory = (FIXTURES / "ascend" / "npu_smi_memory_910b3.txt").read_text()
        if self.hbm_mib is not None:
            used, total = self.hbm_mib
            text = re.sub(r"(\d+) / 65536", lambda m: f"{used:<4} / {total:<5}", text)
            memory = memory.replace("HBM Capacity(MB)               : 65536", f"HBM Capacity(MB)               : {total}")
        (self.replay / "npu-smi_info.txt").write_text(text)
        (self.replay / "npu-smi_info_-l.txt").write_text(f"\tTotal Count                    : {len(ids)}\n\n" + "".join(
            f"\tNPU ID                         : {i}\n\tChip Count                     : 1\n\n" for i in ids))
        board = (FIXTURES / "ascend" / "npu_smi_board_910b3.txt").read_text().replace(RECORDED_DRIVER, self.driver)
        for i in ids:
            (self.replay / f"npu-smi_info_-t_memory_-i_{i}.txt").write_text(memory)
            (self.replay / f"npu-smi_info_-t_board_-i_{i}.txt").write_text(board)
            (self.replay / f"hccn_tool_-i_{i}_-ip_-g.txt").write_text(f"ipaddr:192.168.100.{101 + i}\n"
                                                                     "netmask:255.255.255.0\n")
            (self.replay / f"hccn_tool_-i_{i}_-link_-g.txt").write_text("link status: UP\n")
        for tool in ("npu-smi", "hccn_tool"):
            _script(self.tools / tool, _replayer(self.replay, tool))
        ascend = self.upper / "Ascend"
        (self.upper / "sbin").mkdir(parents=True)
        (self.upper / "sbin" / "npu-smi").symlink_to(self.tools / "npu-smi")
        (ascend / "driver" / "tools").mkdir(parents=True)
        (ascend / "driver" / "tools" / "hccn_tool").symlink_to(self.tools / "hccn_tool")
        (ascend / "driver" / "version.info").write_text(f"Version={self.driver}\n")
        (ascend / "firmware").mkdir()
        (ascend / "firmware" / "version.info").write_text("Version=7.7.0.6.236\n")
        kit = ascend / "ascend-toolkit" / self.toolkit
        arch = f"{os.uname().machine}-linux"
        (kit / arch).mkdir(parents=True)
        (kit / "lib64").mkdir()
        (kit / arch / "ascend_toolkit_install.info").write_text(
            f"package_name=Ascend-cann-toolkit\nversion={self.toolkit}\narch={os.uname().machine}\nos=linux\n"
            f"path=/usr/local/Ascend/ascend-toolkit/{self.toolkit}/{arch}\n")
        if self.headers:
            (kit / "include" / "acl").mkdir(parents=True)
            (kit / "include" / "acl" / "acl.h").write_text("/* simulated */\n")
        (ascend / "ascend-toolkit" / "latest").symlink_to(self.toolkit)
        (ascend / "ascend-toolkit" / "set_env.sh").write_text(
            "export ASCEND_TOOLKIT_HOME=/usr/local/Ascend/ascend-toolkit/latest\n"
            "export ASCEND_HOME_PATH=${ASCEND_TOOLKIT_HOME}\n"
            "export LD_LIBRARY_PATH=${ASCEND_TOOLKIT_HOME}/lib64:/usr/local/Ascend/driver/lib64:${LD_LIBRARY_PATH}\n"
            "export PATH=${ASCEND_TOOLKIT_HOME}/bin:${PATH}\n"
            "export ASCEND_OPP_PATH=${ASCEND_TOOLKIT_HOME}/opp\nexport ASCEND_AICPU_PATH=${ASCEND_TOOLKIT_HOME}\n")
        engines = self.upper / ENGINE_DIR.removeprefix("/usr/local/")
        for name in ("llama-server", "llama-mpi-server"):
            _script(engines / name, f"import os, sys\n"
                                    f"os.execv(sys.executable, [sys.executable, {str(STANDIN)!r}, __file__] + sys.argv[1:])\n")
        self.work.mkdir()
        self.srv.mkdir()

    def model(self, name: str, experts: int = 4) -> Path:
        """A small but real GGUF (DeepSeek-V2's architecture, Q8_0) at /srv/models/<name>."""
        path = self.srv / "models" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tiny_gguf(path, 4096, "deepseek2", experts, LlamaFileType.MOSTLY_Q8_0)
        return Path("/srv/models") / name

    def tools_env(self, **extra: str) -> dict[str, str]:
        """This process's environment with the stand-in tools first on PATH and no Ascend variables of its own."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ASCEND_", "HCCL_"))}
        env["PATH"] = f"{self.tools}:{env['PATH']}"
        return env | extra

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a process run on the host (run()): its PATH has /usr/local/sbin, the driver's tools."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ASCEND_", "HCCL_", "LAUNCHER_ASCEND"))}
        venv = str(Path(sys.executable).parent)
        env["PATH"] = f"/usr/local/sbin:/usr/local/Ascend/driver/tools:{venv}:{env['PATH']}"
        help_file = self.root / "help.txt"
        if not help_file.exists():
            help_file.write_text(real_llama_server_help())
        env["STANDIN_RECORD"], env["STANDIN_HELP"] = str(self.record), str(help_file)
        env["OMPI_ALLOW_RUN_AS_ROOT"] = env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"  # tests run as root
        return env | extra

    def command(self, argv: list[str], netns: str | None = None) -> list[str]:
        script = (f"set -e; mount -t overlay overlay -o lowerdir=/usr/local,upperdir={self.upper},"
                  f"workdir={self.work} /usr/local; mount --bind {self.srv} /srv; "
                  + (". /usr/local/Ascend/ascend-toolkit/set_env.sh; " if self.sourced else "") + 'exec "$@"')
        inner = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]
        return (["ip", "netns", "exec", netns] if netns else []) + inner

    def run(self, argv: list[str], netns: str | None = None, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(argv, netns), env=env or self.env(), capture_output=True, text=True,
                              timeout=kw.pop("timeout", 120), cwd=kw.pop("cwd", ROOT), **kw)

    def start(self, argv: list[str], netns: str | None = None, env: dict | None = None, log: Path | None = None):
        out = open(log or self.root / "launch.log", "ab")
        return subprocess.Popen(self.command(argv, netns), env=env or self.env(), stdout=out, stderr=subprocess.STDOUT,
                                cwd=ROOT, start_new_session=True)

    def records(self) -> list[dict]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines() if line.strip()]


def real_llama_server_help() -> str:
    """`llama-server --help` of launcher's own build: the upstream flags the stand-in claims to take."""
    from launcher.toolchain.cache import all_builds
    for tree in all_builds():
        server = tree.bin_dir / "llama-server"
        if server.exists():
            return subprocess.run([str(server), "--help"], capture_output=True, text=True, timeout=60).stdout
    raise RuntimeError("no llama.cpp build: run `make build` (tier-2 tests need it)")
