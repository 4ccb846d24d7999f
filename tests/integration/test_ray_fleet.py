"""`serve --fleet ray`: instances as Ray actors on a three-node Ray cluster on this machine
(`ray.cluster_utils.Cluster` in sagemaker_emu/ray_cluster.py, nodes with different fake
accelerators), all through boto3: a
two-variant endpoint and an inference component land on the nodes their instance types ask
for, answer, are replaced when killed, scale out and in, an instance type no node holds fails
saying so, and deleting everything leaves nothing on any node.

The cluster and the emulator run in the Ray environment (`.venv-ray`, which `make test`
installs in the background); elsewhere the tests are skipped saying how to get it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sagemaker_emu.testing import RayCluster, client, deploy
from tests.integration.installs import wait_for_install
from tests.integration.test_fleet import alive, eventually
from tests.integration.test_inference_components import component, ic_endpoint

ROOT = Path(__file__).resolve().parents[2]
RAY_PYTHON = os.environ.get("SAGEMAKER_EMU_RAY_PYTHON", str(ROOT / ".venv-ray" / "bin" / "python"))
STATUS = os.environ.get("SAGEMAKER_EMU_RAY_STATUS")  # written by `make test`'s background install
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
LLM = {"Image": "sagemaker-emu/llm-sim", "Environment": {
    "LLM_SIM_PREFILL_BASE_MS": "1", "LLM_SIM_PREFILL_MS_PER_TOKEN": "0", "LLM_SIM_DECODE_MS_PER_TOKEN": "1"}}
BODY = json.dumps({"inputs": "Where does this instance run?", "parameters": {"max_new_tokens": 2}})


@pytest.fixture(scope="module")
def ray_python() -> str:
    wait_for_install(STATUS, RAY_PYTHON, "Ray", "make test, or make install-ray,")
    return RAY_PYTHON


@pytest.fixture(scope="module")
def cluster(ray_python):
    ray = RayCluster(ray_python)
    yield ray
    ray.stop()


@pytest.fixture(scope="module")
def emu(cluster):
    srv = cluster.emulator()
    yield srv
    srv.stop()


def holders() -> list[int]:
    """The Ray actor processes holding workers, on every node (one machine here)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"ray::Holder"):
                found.append(int(cmdline.parent.name))
        except OSError:  # noqa: PERF203 - a process that ended while we looked
            continue
    return found


def placed(emu, endpoint: str) -> dict[str, list[dict]]:
    view = emu.endpoint_view(endpoint)
    out = {v["name"]: v["instances"] for v in view["variants"]}
    out.update({name: c["copies"] for name, c in view["inference_components"].items()})
    return out


def test_instances_live_on_the_nodes_their_types_ask_for_and_go_when_deleted(cluster, emu):
    kinds = cluster.nodes
    sm, rt = emu.client(), emu.client("sagemaker-runtime")
    sm.create_model(ModelName="llm", PrimaryContainer=LLM, ExecutionRoleArn=ROLE)
    sm.create_endpoint_config(EndpointConfigName="two", ProductionVariants=[
        {"VariantName": "small", "ModelName": "llm", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 2},
        {"VariantName": "large", "ModelName": "llm", "InstanceType": "ml.g6e.2xlarge", "InitialInstanceCount": 1},
        {"VariantName": "cpu", "ModelName": "llm", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="two", EndpointConfigName="two")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="two", WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    where = placed(emu, "two")
    assert [kinds[i["node"]] for i in where["small"]] == ["A10G", "A10G"]
    assert [kinds[i["node"]] for i in where["large"]] == ["L40S"]
    assert [kinds[i["node"]] for i in where["cpu"]] == ["head"]  # no GPU asked for: the head's CPUs hold it
    for variant in ("small", "large", "cpu"):
        answer = rt.invoke_endpoint(EndpointName="two", TargetVariant=variant, ContentType="application/json", Body=BODY)
        assert answer["InvokedProductionVariant"] == variant and "generated_text" in answer["Body"].read().decode()

    # an inference component: its host on the A10G node, its copies beside it
    ic_endpoint(sm, "ic")
    assert component(sm, "copies", "ic", "llm", copies=2)["InferenceComponentStatus"] == "InService"
    copies = placed(emu, "ic")["copies"]
    host_node = {h["id"]: None for h in emu.endpoint_view("ic")["variants"][0]["hosts"]}
    assert len(copies) == 2 and {kinds[c["node"]] for c in copies} == {"A10G"} and len(host_node) == 1
    answer = rt.invoke_endpoint(EndpointName="ic", InferenceComponentName="copies", ContentType="application/json",
                                Body=BODY)
    assert "generated_text" in answer["Body"].read().decode()

    # a killed worker is replaced by the fleet, on a node of its type
    victim = where["small"][0]
    os.kill(victim["pid"], signal.SIGKILL)
    eventually(lambda: (lambda i: i["restarts"] == 1 and i["health"] == "Healthy" and i["pid"] != victim["pid"])(
        next(i for i in placed(emu, "two")["small"] if i["id"] == victim["id"])), timeout=60)
    assert all(kinds[i["node"]] == "A10G" for i in placed(emu, "two")["small"])

    # scale out, then in
    def scale(count: int) -> None:
        sm.update_endpoint_weights_and_capacities(EndpointName="two", DesiredWeightsAndCapacities=[
            {"VariantName": "small", "DesiredInstanceCount": count}])
        sm.get_waiter("endpoint_in_service").wait(EndpointName="two", WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    scale(3)
    assert [kinds[i["node"]] for i in placed(emu, "two")["small"]] == ["A10G"] * 3
    scale(1)
    eventually(lambda: len(placed(emu, "two")["small"]) == 1, timeout=30)

    # delete everything: no worker and no actor left on any node
    pids = [i["pid"] for instances in (*placed(emu, "two").values(), *placed(emu, "ic").values()) for i in instances]
    assert holders()  # the actors are there to be gone
    sm.delete_inference_component(InferenceComponentName="copies")
    eventually(lambda: "copies" not in emu.endpoint_view("ic")["inference_components"], timeout=60)
    for name in ("two", "ic"):
        sm.delete_endpoint(EndpointName=name)
        sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    eventually(lambda: not any(alive(p) for p in pids) and not holders(), timeout=30)
    eventually(lambda: all_returned(cluster.address), timeout=60, interval=1)  # no placement group left either


def all_returned(address: str) -> bool:
    """Every resource of the cluster is free again (the actors and placement groups are gone)."""
    script = ("import json, ray; ray.init(address=%r, log_to_driver=False, logging_level='ERROR'); "
              "print(json.dumps([ray.available_resources(), ray.cluster_resources()]))" % address)
    out = subprocess.run([RAY_PYTHON, "-c", script], capture_output=True, text=True, timeout=60).stdout
    free, total = json.loads(out.strip().splitlines()[-1])
    held = ("CPU", "GPU", "memory", "accelerator_type:A10G", "accelerator_type:L40S")
    return all(abs(free.get(k, 0) - total.get(k, 0)) < 1e-6 for k in held)


def test_an_image_map_command_runs_on_the_node_that_holds_its_actor(cluster, ray_python, tmp_path):
    image_map = tmp_path / "images.toml"
    image_map.write_text('[images."acme/custom:1"]\n'
                         f'command = ["{ray_python}", "{ROOT / "tests" / "fixtures" / "user_container.py"}"]\n'
                         'env = { GREETING = "hello from a node" }\n')
    srv = cluster.emulator("--image-map", str(image_map))
    try:
        sm = srv.client()
        deploy(sm, "mapped", container={"Image": "acme/custom:1"}, InstanceType="ml.g6e.2xlarge")
        (instance,) = placed(srv, "mapped")["AllTraffic"]
        assert cluster.nodes[instance["node"]] == "L40S" and instance["host"] != "127.0.0.1"
        out = json.loads(srv.client("sagemaker-runtime").invoke_endpoint(EndpointName="mapped", Body=b"hi")["Body"].read())
        assert out == {"container": "hello from a node", "echo": "hi"}
    finally:
        srv.stop()


def test_an_instance_type_no_node_can_hold_fails_saying_so(emu):
    sm = emu.client()
    sm.create_model(ModelName="big", PrimaryContainer=LLM, ExecutionRoleArn=ROLE)
    sm.create_endpoint_config(EndpointConfigName="big", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": "big", "InstanceType": "ml.p5.48xlarge", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="big", EndpointConfigName="big")
    described = eventually(lambda: (lambda d: d if d["EndpointStatus"] != "Creating" else None)(
        sm.describe_endpoint(EndpointName="big")), timeout=60)
    assert described["EndpointStatus"] == "Failed"
    assert "No node of the Ray cluster" in described["FailureReason"] and "ml.p5.48xlarge" in described["FailureReason"]
    assert "accelerator_type:H100" in described["FailureReason"]
    client(emu.url).delete_endpoint(EndpointName="big")


def test_no_actor_or_worker_outlives_a_killed_emulator(cluster):
    srv = cluster.emulator()
    try:
        sm = srv.client()
        sm.create_model(ModelName="m", PrimaryContainer=LLM, ExecutionRoleArn=ROLE)
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 2}])
        sm.create_endpoint(EndpointName="orphans", EndpointConfigName="c")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="orphans", WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        pids = [i["pid"] for i in placed(srv, "orphans")["AllTraffic"]]
        assert all(alive(p) for p in pids) and holders()
        srv.proc.send_signal(signal.SIGKILL)  # nobody stops anything: Ray ends a dead driver's actors
        srv.proc.wait(timeout=30)
        eventually(lambda: not any(alive(p) for p in pids) and not holders(), timeout=60)
    finally:
        srv.stop()


def test_bench_routing_runs_each_point_on_both_backends(ray_python, tmp_path):
    out = tmp_path / "routing.json"
    result = subprocess.run([sys.executable, "-m", "sagemaker_emu", "bench", "routing", "--quick", "--backend", "local,ray",
                             "--ray-python", ray_python, "--strategies", "RANDOM,IDEAL", "--json", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "backends side by side (same run)" in result.stdout and "Ray adds" in result.stdout
    data = json.loads(out.read_text())
    assert sorted((r["backend"], r["strategy"]) for r in data["results"]) == [
        ("local", "IDEAL"), ("local", "RANDOM"), ("ray", "IDEAL"), ("ray", "RANDOM")]
    assert all(r["requests"] > 0 and r["errors"] == 0 for r in data["results"])
    assert data["call_overhead_s"].keys() == {"local", "ray"}
