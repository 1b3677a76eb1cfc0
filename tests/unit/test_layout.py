"""Tier 1: the tree keeps its layers (README, "Layout"). Read from the code's own imports with `ast`:
no cycle, no import from a lower layer to a higher one beyond the named ones, no import inside a function
to hide one (the CLI may import a command's modules lazily), and no kind-name comparison outside engines/."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "launcher"

# Bottom to top; a module may import its own layer and the ones below. The README's layout section says why.
LAYERS = [
    ("base", ["errors", "units", "paths", "net", "gguf_info", "capabilities", "devices", "telemetry", "children",
              "procfs"]),
    ("protocols", ["protocols"]),
    ("config", ["config"]),
    ("engines", ["engines"]),
    ("memory", ["memory"]),
    ("models", ["models"]),
    ("toolchain", ["toolchain", "bindings", "binaries"]),
    ("plan", ["plan"]),
    ("validate", ["validate"]),
    ("supervise", ["supervise"]),
    ("mpi", ["mpi"]),
    ("gateway core", ["gateway"]),
    ("gateway fronts", ["gateway.openai", "gateway.anthropic", "gateway.llama", "gateway.kserve", "gateway.manage",
                        "gateway.discovery", "gateway.console"]),
    ("gateway app", ["gateway.app"]),
    ("worker", ["worker"]),
    ("serve", ["prepare", "reload", "serve"]),
    ("pods", ["pods"]),
    ("commands", ["testing", "bench", "export", "cli", "doctor", "docs", "__main__"]),
]
# Imports from a lower layer to a higher one that are allowed, with the reason in the README.
UPWARD: set[tuple[str, str]] = set()
LAZY_ALLOWED = ("launcher.cli",)  # entry points import a command's modules when it runs, so `validate` starts fast


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = modules()


def _target(module: str, node: ast.ImportFrom, is_package: bool, name: str) -> str:
    if node.level:
        base = module.split(".")[: None if is_package else -1]
        base = base[: len(base) - (node.level - 1)]
        origin = ".".join(base + ([node.module] if node.module else []))
    else:
        origin = node.module or ""
    full = f"{origin}.{name}"
    return full if full in MODULES else origin


def imports() -> tuple[list[tuple[str, str]], list[tuple[str, str, int]]]:
    """(module-level edges, function-level imports) between launcher's modules; TYPE_CHECKING blocks skipped."""
    edges, lazy = [], []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())

        def visit(node, in_function: bool, is_package=path.name == "__init__.py", module=module):
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    continue
                inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
                targets = []
                if isinstance(child, ast.ImportFrom):
                    targets = [_target(module, child, is_package, a.name) for a in child.names]
                elif isinstance(child, ast.Import):
                    targets = [a.name for a in child.names]
                for t in targets:
                    while t not in MODULES and "." in t:
                        t = t.rsplit(".", 1)[0]
                    if t.startswith("launcher.") and t != module:
                        (lazy.append((module, t, child.lineno)) if inner else edges.append((module, t)))
                visit(child, inner)
        visit(tree, False)
    return edges, lazy


def layer_of(module: str) -> int:
    name = module.removeprefix("launcher.")
    best, rank = -1, None
    for i, (_, rooms) in enumerate(LAYERS):
        for room in rooms:
            if (name == room or name.startswith(room + ".")) and len(room) > best:
                best, rank = len(room), i
    assert rank is not None, f"{module} is in no layer: add it to LAYERS and the README"
    return rank


def test_no_import_runs_from_a_lower_layer_to_a_higher_one():
    edges, _ = imports()
    upward = {(a, b) for a, b in edges if layer_of(b) > layer_of(a)}
    assert upward <= UPWARD, sorted(upward - UPWARD)
    assert len(UPWARD) <= 2


def test_the_imports_have_no_cycle():
    edges, _ = imports()
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}

    def walk(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]) \
                if nxt in trail else nxt
            if nxt not in state:
                walk(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])


def test_no_import_inside_a_function_outside_the_cli():
    _, lazy = imports()
    hidden = [f"{a}:{line} imports {b}" for a, b, line in lazy if not a.startswith(LAZY_ALLOWED)]
    assert not hidden, hidden


def test_worker_config_plan_and_mpi_import_neither_gateway_nor_bench():
    edges, _ = imports()
    lower = ("launcher.worker", "launcher.config", "launcher.plan", "launcher.mpi")
    bad = [(a, b) for a, b in edges if a.startswith(lower) and b.startswith(("launcher.gateway", "launcher.bench"))]
    assert not bad, bad


def test_engine_kind_names_are_written_only_in_the_engines_package_and_the_schema():
    kind = re.compile(r"""["']llama-cpp-python["']""")
    found = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
             if kind.search(p.read_text()) and "engines" not in p.relative_to(PACKAGE).parts]
    assert not found, found
