"""Claims of docs/architecture.md about who imports whom, checked against the code's imports
(issue 12). Each row: a part of sagemaker_emu, and the parts it must not import."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sagemaker_emu"
PARTS = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p.is_dir() and any(p.glob("*.py")))}

RULES = {
    # the front doors reach the services through the composition root, never around it
    "edge": {"control", "runtime", "fleet", "routing", "kv", "worker", "emu_api"},
    "protocol": {"edge", "app", "emu_api", "fleet", "routing", "kv", "worker", "bench", "neighbours"},
    # the runtime reads the control plane through runtime/api.py's Directory
    "runtime": {"control", "protocol", "edge", "app", "emu_api", "worker", "bench", "neighbours", "cloudwatch"},
    "control": {"runtime", "protocol", "edge", "app", "emu_api", "routing", "kv", "worker", "bench", "neighbours",
                "cloudwatch", "autoscaling"},
    # the AWS around an endpoint: reached by the others only through what app.build hands them
    "neighbours": {"control", "runtime", "fleet", "routing", "kv", "worker", "edge", "app", "emu_api", "bench"},
    # CloudWatch: fed by the runtime through the metrics sink app.build wires, never imported by it
    "cloudwatch": {"control", "runtime", "fleet", "routing", "kv", "worker", "edge", "app", "emu_api", "bench",
                   "protocol", "neighbours", "autoscaling"},
    # CloudWatch Logs: fed through the source app.build wires (the store's names, the deployer's files)
    "cloudwatch_logs": {"control", "runtime", "fleet", "routing", "kv", "worker", "edge", "app", "emu_api", "bench",
                        "protocol", "neighbours", "autoscaling", "cloudwatch"},
    # Application Auto Scaling reaches SageMaker through the Capacity it declares (control/capacity.py)
    "autoscaling": {"control", "runtime", "fleet", "routing", "kv", "worker", "edge", "app", "emu_api", "bench",
                    "protocol", "neighbours"},
    # AI benchmark jobs' runner: told of jobs by the events app.build wires, reports through Jobs
    "benchmarks": {"control", "runtime", "fleet", "routing", "kv", "worker", "edge", "app", "emu_api", "bench",
                   "protocol", "autoscaling", "cloudwatch"},
    "emu_api": {"protocol", "edge", "worker", "app", "bench"},  # a front door beside protocol/
    "ui": {"protocol", "edge", "worker", "app", "bench", "emu_api", "runtime"},  # reads what emu_api hands it
    "fleet": {"control", "runtime", "protocol", "edge", "app", "emu_api", "bench", "neighbours", "cloudwatch"},  # fleet.api is its interface
    "routing": {"fleet", "control", "runtime", "protocol", "edge", "worker", "app"},  # pure strategies
    "kv": {"fleet", "control", "runtime", "routing", "worker", "protocol", "edge", "app"},  # a leaf concern
    "worker": {"fleet", "control", "runtime", "routing", "protocol", "edge", "app", "emu_api"},  # in the instance
    "bench": {"control", "runtime", "protocol", "edge", "app", "emu_api"},  # through the harness (testing.py)
}


def imports(path: Path) -> set[str]:
    """The sagemaker_emu modules a file imports, as dotted names below the package."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "sagemaker_emu":
            names |= {a.name for a in node.names if a.name in PARTS}  # from sagemaker_emu import emu_api
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sagemaker_emu."):
            names.add(node.module.split(".", 1)[1])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".", 1)[1] for a in node.names if a.name.startswith("sagemaker_emu.")}
    return names


def files_of(part: str) -> list[Path]:
    folder = PACKAGE / part
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{part}.py"]


@pytest.mark.parametrize("part", sorted(RULES))
def test_layer_imports_nothing_it_must_not(part):
    offending = {}
    for path in files_of(part):
        bad = {name for name in imports(path) if name.split(".")[0] in RULES[part]}
        if bad:
            offending[str(path.relative_to(PACKAGE))] = bad
    assert offending == {}


@pytest.mark.parametrize("part", ["control", "runtime"])
def test_control_and_runtime_reach_the_fleet_only_through_its_declared_interface(part):
    used = {name for path in files_of(part) for name in imports(path) if name.startswith("fleet")}
    assert used == {"fleet.api"}


def test_only_the_store_takes_the_store_lock():
    """`_lock` of control/store.py is private; nobody outside the store names `backend.lock`."""
    holders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if "backend.lock" in p.read_text() or "backend._lock" in p.read_text()]
    assert holders == []


def test_every_rule_names_real_parts():
    assert set(RULES) <= PARTS and all(rule <= PARTS for rule in RULES.values())


def test_the_sitecustomize_copy_of_aws_hosts_needs_nothing_but_the_standard_library():
    """`sagemaker-emu env` copies aws_hosts.py into a directory on PYTHONPATH as sitecustomize.py,
    for interpreters that may not have sagemaker-emu, or anything else, installed."""
    import sys

    tree = ast.parse((PACKAGE / "aws_hosts.py").read_text())
    top_level = {a.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for a in node.names} | \
        {node.module.split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert top_level - {"__future__"} <= sys.stdlib_module_names, top_level
