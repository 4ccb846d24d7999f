"""Claims of docs/architecture.md about who imports whom, checked against the code's imports
(issue 12). Each row: a package, and the packages of sagemaker_emu it must not import."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sagemaker_emu"

RULES = {
    "fleet": {"control", "runtime", "protocol", "edge", "app", "emu_api"},  # fleet.api is its interface
    "kv": {"fleet", "control", "runtime", "routing", "worker", "protocol", "edge"},  # a leaf concern
    "routing": {"fleet", "control", "runtime", "protocol", "edge", "worker"},  # pure strategies
    "worker": {"fleet", "control", "runtime", "routing", "protocol", "edge", "app"},  # runs in the instance
}


def imported_packages(folder: Path) -> dict[str, set[str]]:
    """File -> the sagemaker_emu subpackages (or top modules) it imports."""
    found = {}
    for path in folder.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sagemaker_emu."):
                names.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("sagemaker_emu.")}
        found[str(path.relative_to(PACKAGE))] = names
    return found


@pytest.mark.parametrize("package", sorted(RULES))
def test_layer_imports_nothing_above_it(package):
    offending = {f: names & RULES[package] for f, names in imported_packages(PACKAGE / package).items()
                 if names & RULES[package]}
    assert offending == {}
