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
