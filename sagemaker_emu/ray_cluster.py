"""`python -m sagemaker_emu.ray_cluster`: a Ray cluster of three nodes on this machine
(`ray.cluster_utils.Cluster`) for the tests and `bench routing --backend ray`, started through
`testing.RayCluster`. Run with a Python that has Ray (`.venv-ray`), it prints one JSON line (the
address, and each node's id with its kind) and shuts the cluster down when its stdin closes
(its caller ended, or died)."""

from __future__ import annotations

import json
import sys
from typing import Any

from ray.cluster_utils import Cluster

GIB = 1024**3
LIGHT: dict[str, Any] = {"object_store_memory": 80 * 1024**2, "include_dashboard": False}  # the least Ray accepts

# Fake resources, as if each node were many GPU machines: room for a benchmark's dozens of
# ml.g5 and ml.g6e instances. The head holds CPU instances only; no node has an H100.
NODES: dict[str, dict[str, Any]] = {
    "head": {"num_cpus": 64, "memory": 256 * GIB},
    "A10G": {"num_cpus": 1024, "num_gpus": 96, "memory": 4096 * GIB, "resources": {"accelerator_type:A10G": 1}},
    "L40S": {"num_cpus": 1024, "num_gpus": 96, "memory": 8192 * GIB, "resources": {"accelerator_type:L40S": 1}},
}


def main() -> int:
    cluster = Cluster(initialize_head=True, head_node_args={**NODES["head"], **LIGHT})
    kinds = {cluster.head_node.node_id: "head"}
    for kind in ("A10G", "L40S"):
        kinds[cluster.add_node(**NODES[kind], **LIGHT).node_id] = kind
    cluster.wait_for_nodes()
    try:
        print(json.dumps({"address": cluster.address, "nodes": kinds}), flush=True)
        sys.stdin.read()  # until the test closes it, or goes
    finally:
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
