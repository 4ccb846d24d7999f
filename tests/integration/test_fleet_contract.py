"""The fleet's contract, the same on both backends: local processes, and Ray actors on a
three-node Ray cluster on this machine (`--fleet ray`; skipped, saying how to get Ray, where it
is not installed). Through boto3: instances start and answer, a killed worker is replaced,
scaling adds and removes processes, an update swaps them with no failed call, copies of an
inference component scale, and delete and reset leave no process behind."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import EmulatorProcess, RayCluster, deploy, variant
from tests.integration.test_fleet import alive, eventually
from tests.integration.test_inference_components import component, ic_endpoint
from tests.integration.test_ray_fleet import RAY_PYTHON, STATUS
from tests.integration.installs import wait_for_install

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
LLM = {"Image": "sagemaker-emu/llm-sim", "Environment": {
    "LLM_SIM_PREFILL_BASE_MS": "1", "LLM_SIM_PREFILL_MS_PER_TOKEN": "0", "LLM_SIM_DECODE_MS_PER_TOKEN": "1"}}
BODY = json.dumps({"inputs": "hello", "parameters": {"max_new_tokens": 2}})
TYPE = "ml.g5.xlarge"  # a GPU type: on Ray it needs the A10G node


@pytest.fixture(scope="module", params=["local", "ray"])
def backend(request):
    if request.param == "local":
        srv = EmulatorProcess()
        yield srv
        srv.stop()
        return
    wait_for_install(STATUS, RAY_PYTHON, "Ray", "make test, or make install-ray,")
    cluster = RayCluster(RAY_PYTHON)
    try:
        srv = cluster.emulator()
        yield srv
        srv.stop()
    finally:
        cluster.stop()


@pytest.fixture
def emu(backend):
    backend.reset()
    return backend


def instances(emu, endpoint: str) -> list[dict]:
    return [i for v in emu.endpoint_view(endpoint)["variants"] for i in v["instances"]]


def llm_endpoint(emu, name: str, count: int) -> None:
    deploy(emu.client(), name, container=LLM, InstanceType=TYPE, InitialInstanceCount=count)


def invoke(emu, name: str) -> str:
    return emu.client("sagemaker-runtime").invoke_endpoint(EndpointName=name, ContentType="application/json",
                                                           Body=BODY)["Body"].read().decode()


def test_instances_start_and_each_answers(emu):
    llm_endpoint(emu, "up", 3)
    started = instances(emu, "up")
    assert len(started) == 3 and all(i["health"] == "Healthy" and alive(i["pid"]) for i in started)
    for _ in range(12):
        assert "generated_text" in invoke(emu, "up")
    assert sum(i["served"] for i in instances(emu, "up")) == 12


def test_a_killed_worker_is_replaced(emu):
    llm_endpoint(emu, "victim", 1)
    (before,) = instances(emu, "victim")
    os.kill(before["pid"], signal.SIGKILL)
    eventually(lambda: (lambda i: i["restarts"] == 1 and i["health"] == "Healthy")(instances(emu, "victim")[0]),
               timeout=60)
    (after,) = instances(emu, "victim")
    assert after["pid"] != before["pid"] and alive(after["pid"]) and "generated_text" in invoke(emu, "victim")


def test_scaling_adds_and_removes_processes(emu):
    sm = emu.client()
    llm_endpoint(emu, "grows", 1)

    def scale(count: int) -> list[dict]:
        sm.update_endpoint_weights_and_capacities(EndpointName="grows", DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": count}])
        sm.get_waiter("endpoint_in_service").wait(EndpointName="grows", WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        return eventually(lambda: (lambda found: found if len(found) == count else None)(instances(emu, "grows")),
                          timeout=30)

    grown = scale(3)
    assert all(alive(i["pid"]) for i in grown)
    shrunk = scale(1)
    gone = {i["pid"] for i in grown} - {i["pid"] for i in shrunk}
    assert len(gone) == 2
    eventually(lambda: not any(alive(p) for p in gone), timeout=30)


def test_an_update_swaps_the_processes_with_no_failed_call(emu):
    sm = emu.client()
    llm_endpoint(emu, "swap", 2)
    old = {i["pid"] for i in instances(emu, "swap")}
    sm.create_endpoint_config(EndpointConfigName="swap-new", ProductionVariants=[
        variant(model="swap-model", InstanceType=TYPE, InitialInstanceCount=2)])
    answers: list[str] = []
    failures: list[ClientError] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                answers.append(invoke(emu, "swap"))
            except ClientError as exc:  # noqa: PERF203 - every failure is kept and asserted on
                failures.append(exc)

    callers = [threading.Thread(target=load) for _ in range(3)]
    for t in callers:
        t.start()
    try:
        eventually(lambda: len(answers) > 10)
        sm.update_endpoint(EndpointName="swap", EndpointConfigName="swap-new")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="swap", WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        count = len(answers)
        eventually(lambda: len(answers) > count + 10)
    finally:
        stop.set()
        for t in callers:
            t.join()
    assert failures == []
    new = {i["pid"] for i in instances(emu, "swap")}
    assert len(new) == 2 and not new & old
    eventually(lambda: not any(alive(p) for p in old), timeout=30)


def test_copies_of_an_inference_component_scale(emu):
    sm = emu.client()
    sm.create_model(ModelName="copied", PrimaryContainer=LLM, ExecutionRoleArn=ROLE)
    ic_endpoint(sm, "hosts")
    component(sm, "copied", "hosts", "copied", copies=1)

    def copies(count: int) -> list[dict]:
        return eventually(lambda: (lambda d, c: c if d["InferenceComponentStatus"] == "InService" and len(c) == count
                                   else None)(sm.describe_inference_component(InferenceComponentName="copied"),
                                              emu.endpoint_view("hosts")["inference_components"]["copied"]["copies"]),
                          timeout=60)

    first = copies(1)
    sm.update_inference_component_runtime_config(InferenceComponentName="copied", DesiredRuntimeConfig={"CopyCount": 3})
    three = copies(3)
    assert all(alive(c["pid"]) for c in three)
    out = emu.client("sagemaker-runtime").invoke_endpoint(EndpointName="hosts", InferenceComponentName="copied",
                                                          ContentType="application/json", Body=BODY)
    assert "generated_text" in out["Body"].read().decode()
    sm.update_inference_component_runtime_config(InferenceComponentName="copied", DesiredRuntimeConfig={"CopyCount": 1})
    left = copies(1)
    gone = {c["pid"] for c in three} - {c["pid"] for c in left}
    assert len(gone) == 2 and first
    eventually(lambda: not any(alive(p) for p in gone), timeout=30)


def test_delete_and_reset_leave_no_process(emu):
    sm = emu.client()
    llm_endpoint(emu, "deleted", 2)
    llm_endpoint(emu, "reset", 2)
    deleted = [i["pid"] for i in instances(emu, "deleted")]
    sm.delete_endpoint(EndpointName="deleted")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="deleted", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    eventually(lambda: not any(alive(p) for p in deleted), timeout=30)
    kept = [i["pid"] for i in instances(emu, "reset")]
    assert all(alive(p) for p in kept)
    emu.reset()
    eventually(lambda: not any(alive(p) for p in kept), timeout=30)


def test_managed_instance_scaling_adds_an_instance_for_copies_and_releases_it(emu):
    sm = emu.client()
    sm.create_model(ModelName="managed", PrimaryContainer=LLM, ExecutionRoleArn=ROLE)
    sm.create_endpoint_config(EndpointConfigName="managed", ExecutionRoleArn=ROLE, ProductionVariants=[{
        "VariantName": "AllTraffic", "InstanceType": TYPE, "InitialInstanceCount": 1,
        "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 2}}])
    sm.create_endpoint(EndpointName="managed", EndpointConfigName="managed")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="managed", WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    grown = component(sm, "spread", "managed", "managed", copies=2)  # one GPU each, one per instance
    placed = emu.endpoint_view("managed")["inference_components"]["spread"]["copies"]
    assert grown["RuntimeConfig"]["CurrentCopyCount"] == 2 and len({c["placed_on"] for c in placed}) == 2
    assert sm.describe_endpoint(EndpointName="managed")["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    sm.update_inference_component_runtime_config(InferenceComponentName="spread", DesiredRuntimeConfig={"CopyCount": 1})
    eventually(lambda: sm.describe_endpoint(EndpointName="managed")["ProductionVariants"][0][
        "CurrentInstanceCount"] == 1, timeout=60)
    gone = {c["pid"] for c in placed} - {c["pid"] for c in emu.endpoint_view("managed")["inference_components"][
        "spread"]["copies"]}
    assert len(gone) == 1
    eventually(lambda: not any(alive(p) for p in gone), timeout=30)
