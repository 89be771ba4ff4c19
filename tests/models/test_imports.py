"""aime.models is pure PyTorch: no Ray and no torch.distributed; collectives are injected."""

import ast
import subprocess
import sys
from pathlib import Path

import aime.models

PACKAGE = Path(aime.models.__file__).parent


def forbidden_uses(tree: ast.AST) -> list[str]:
    """Imports of ray / torch.distributed and any ``torch.distributed`` attribute access."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Attribute) and node.attr == "distributed":
            names = ["torch.distributed"]
        else:
            continue
        found += [n for n in names if n == "ray" or n.startswith(("ray.", "torch.distributed"))]
    return found


def test_no_ray_or_torch_distributed_in_the_sources():
    sources = sorted(PACKAGE.rglob("*.py"))
    offenders = {
        str(p.relative_to(PACKAGE)): uses
        for p in sources
        if (uses := forbidden_uses(ast.parse(p.read_text())))
    }
    assert len(sources) > 10 and not offenders, offenders


def test_the_scan_catches_a_forbidden_import():
    snippet = "\n".join(
        [
            "import ray",
            "from torch import distributed",
            "import torch.distributed as d",
            "torch.distributed.get_rank()",
        ]
    )
    assert len(forbidden_uses(ast.parse(snippet))) == 4


def test_importing_the_package_does_not_load_ray():
    code = "import sys, aime.models; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_every_subpackage_has_a_readme():
    for sub in ("vae", "prior", "dynamics", "attention", "perception", "adversarial", "balancing"):
        assert (PACKAGE / sub / "README.md").exists(), sub
    assert (PACKAGE / "README.md").exists()


def model_imports(tree: ast.Module, module: str) -> tuple[set[str], list[str]]:
    """(aime.models modules imported when ``module`` loads, imports of aime deferred into functions).
    Imports under ``if TYPE_CHECKING:`` are annotations only and count as neither."""
    loaded: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aime.models"):
            base = node.module or ""
            loaded |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    deferred = [
        f"{module}:{node.lineno}"
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aime.models")
    ]
    return loaded & MODULES, deferred


MODULES = {
    "aime.models." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
    for p in PACKAGE.rglob("*.py")
}


def test_model_modules_import_one_way_with_no_deferred_imports():
    graph, deferred = {}, []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = "aime.models." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        graph[name], late = model_imports(ast.parse(path.read_text()), name)
        deferred += late
    assert not deferred, f"imports deferred into functions (a cycle in disguise): {deferred}"
    order: list[str] = []  # depth-first topological sort: a back edge is a cycle
    state: dict[str, str] = {}

    def visit(node: str, path: tuple[str, ...]) -> None:
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import cycle: {' -> '.join((*path, node))}"
        state[node] = "open"
        for child in sorted(graph.get(node, ())):
            if child != node and not node.startswith(child + "."):  # a package's own __init__
                visit(child, (*path, node))
        state[node] = "done"
        order.append(node)

    for node in sorted(graph):
        visit(node, ())
    assert "aime.models.world_model" in order and len(order) == len(graph)
    assert order.index("aime.models.losses") < order.index("aime.models.world_model")
