"""Heterogeneous variants through boto3: InstancePools provisioned by priority, falling back when a
type has no capacity (`/_emu/capacity`, as `serve --capacity` sets it), each pool's count in
DescribeEndpoint, scale-out and scale-in by priority, ModelNameOverride, and the instance type
each worker is told (which sets llm-sim's speed)."""

import datetime
import json
import threading

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import ECHO_IMAGE
from tests.integration.test_fleet import eventually

LLM_SIM = "sagemaker-emu/llm-sim"
G6E, G5, G6 = "ml.g6e.2xlarge", "ml.g5.2xlarge", "ml.g6.2xlarge"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


def pools(*types: str, override: dict[str, str] | None = None) -> list[dict]:
    return [{"InstanceType": t, "Priority": n, **({"ModelNameOverride": override[t]} if t in (override or {}) else {})}
            for n, t in enumerate(types, 1)]


def create(sm, name: str, variant_pools: list[dict], count: int, model: str = "m", image: str = ECHO_IMAGE,
           wait: bool = True, **extra) -> None:
    if model not in {m["ModelName"] for m in sm.list_models()["Models"]}:
        sm.create_model(ModelName=model, PrimaryContainer={"Image": image})
    sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InstancePools": variant_pools,
        "InitialInstanceCount": count, **extra}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    if wait:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def pool_counts(sm, name: str) -> list[tuple[str, int]]:
    variant = sm.describe_endpoint(EndpointName=name)["ProductionVariants"][0]
    return [(p["InstanceType"], p["CurrentInstanceCount"]) for p in variant["InstancePools"]]


def invocations(cw, dims: list[dict]) -> float:
    now = datetime.datetime.now(datetime.timezone.utc)
    points = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=dims,
                                      StartTime=now - datetime.timedelta(hours=1), EndTime=now + datetime.timedelta(
                                          minutes=1), Period=3600, Statistics=["Sum"])["Datapoints"]
    return sum(p["Sum"] for p in points)


# A model's own code reads what its worker was told, as a user's inference.py would.
TOLD = """import os

def model_fn(model_dir):
    return None

def predict_fn(data, model):
    return {"pid": os.getpid(), "type": os.environ["SAGEMAKER_EMU_INSTANCE_TYPE"],
            "decode": float(os.environ["SAGEMAKER_EMU_DECODE_SPEED"])}
"""


def test_each_worker_is_told_its_instance_type_and_speed(server, sm, rt, tmp_path):
    code = tmp_path / "model" / "code"
    code.mkdir(parents=True)
    (code / "inference.py").write_text(TOLD)
    sm.create_model(ModelName="told", PrimaryContainer={"Image": "my/framework:1",
                                                         "ModelDataUrl": (tmp_path / "model").as_uri()})
    server.capacity(G6E, 1)
    create(sm, "told", pools(G6E, G5), 2, model="told")
    types = {i["pid"]: i["instance_type"] for i in server.endpoint_view("told")["variants"][0]["instances"]}
    assert sorted(types.values()) == [G5, G6E]
    answers: dict[int, dict] = {}

    def both_answered() -> bool:
        answer = json.loads(rt.invoke_endpoint(EndpointName="told", ContentType="application/json",
                                               Body=b"[1]")["Body"].read())
        answers[answer["pid"]] = answer
        return answers.keys() == types.keys()

    eventually(both_answered, timeout=30, interval=0)
    for pid, answer in answers.items():
        assert answer["type"] == types[pid]
        assert answer["decode"] == pytest.approx(864 / 600 if types[pid] == G6E else 1)


def test_instances_come_from_the_first_pool_with_capacity_and_describe_counts_each_pool(server, sm, rt):
    assert server.capacity(G6E, 1)[G6E] == {"limit": 1, "in_use": 0}
    create(sm, "het", pools(G6E, G5, G6), 3)
    assert pool_counts(sm, "het") == [(G6E, 1), (G5, 2), (G6, 0)]
    variant = sm.describe_endpoint(EndpointName="het")["ProductionVariants"][0]
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (3, 3)
    config = sm.describe_endpoint_config(EndpointConfigName="het-config")["ProductionVariants"][0]
    assert config["InstancePools"] == pools(G6E, G5, G6) and "InstanceType" not in config
    # every instance takes calls, whatever its type
    instances = server.endpoint_view("het")["variants"][0]["instances"]
    assert sorted(i["instance_type"] for i in instances) == [G5, G5, G6E]
    for _ in range(12):
        assert rt.invoke_endpoint(EndpointName="het", Body=b"hi")["Body"].read() == b"hi"
    served = {i["instance_type"]: 0 for i in instances}
    for i in server.endpoint_view("het")["variants"][0]["instances"]:
        served[i["instance_type"]] += i["served"]
    assert sum(served.values()) == 12
    # CloudWatch counts the variant's calls as before, and each instance type's share of them
    cw = server.client("cloudwatch")
    variant_dims = [{"Name": "EndpointName", "Value": "het"}, {"Name": "VariantName", "Value": "AllTraffic"}]
    assert invocations(cw, variant_dims) == 12
    for itype, count in served.items():
        assert invocations(cw, [*variant_dims, {"Name": "InstanceType", "Value": itype}]) == count


def test_no_capacity_in_any_pool_fails_the_endpoint_with_an_insufficient_capacity_error(server, sm):
    server.capacity(G6E, 0)
    server.capacity(G5, 1)
    create(sm, "short", pools(G6E, G5), 2, wait=False)
    described = eventually(lambda: (lambda d: d if d["EndpointStatus"] == "Failed" else None)(
        sm.describe_endpoint(EndpointName="short")), timeout=60)
    assert "InsufficientInstanceCapacity" in described["FailureReason"]
    assert f"{G6E}, {G5}" in described["FailureReason"]
    # what the failed start held is given back: the one ml.g5.2xlarge can be had again
    assert server.capacity()[G5] == {"limit": 1, "in_use": 0}
    # a variant of one InstanceType meets the same shortage
    sm.create_model(ModelName="one", PrimaryContainer={"Image": ECHO_IMAGE})
    sm.create_endpoint_config(EndpointConfigName="single-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "one", "InstanceType": G6E, "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="single", EndpointConfigName="single-config")
    described = eventually(lambda: (lambda d: d if d["EndpointStatus"] == "Failed" else None)(
        sm.describe_endpoint(EndpointName="single")), timeout=60)
    assert "InsufficientInstanceCapacity" in described["FailureReason"]


def test_scale_out_falls_back_and_scale_in_releases_the_lowest_priority_pools_first(server, sm):
    create(sm, "grow", pools(G6E, G5), 1)
    assert pool_counts(sm, "grow") == [(G6E, 1), (G5, 0)]
    server.capacity(G6E, 2)  # one more of the preferred type, then the fallback

    def scale(count: int) -> None:
        sm.update_endpoint_weights_and_capacities(EndpointName="grow", DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": count}])
        sm.get_waiter("endpoint_in_service").wait(EndpointName="grow", WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    scale(4)
    assert pool_counts(sm, "grow") == [(G6E, 2), (G5, 2)]
    scale(3)
    assert pool_counts(sm, "grow") == [(G6E, 2), (G5, 1)]
    scale(1)
    assert pool_counts(sm, "grow") == [(G6E, 1), (G5, 0)]
    assert sm.describe_endpoint(EndpointName="grow").get("FailureReason") is None


def test_a_pool_runs_its_model_name_override(server, sm, rt):
    sm.create_model(ModelName="generator", PrimaryContainer={"Image": LLM_SIM, "Environment": {
        "LLM_SIM_DECODE_MS_PER_TOKEN": "0", "LLM_SIM_PREFILL_BASE_MS": "0", "LLM_SIM_PREFILL_MS_PER_TOKEN": "0"}})
    server.capacity(G5, 1)
    create(sm, "mixed", pools(G5, G6E, override={G6E: "generator"}), 2,
           RoutingConfig={"RoutingStrategy": "RANDOM"})
    images = {i["SpecifiedImage"] for i in sm.describe_endpoint(EndpointName="mixed")["ProductionVariants"][0]["DeployedImages"]}
    assert images == {ECHO_IMAGE, LLM_SIM}
    body = json.dumps({"inputs": "hello", "parameters": {"max_new_tokens": 2}}).encode()
    answers = {rt.invoke_endpoint(EndpointName="mixed", Body=body, ContentType="application/json")["Body"].read() == body
               for _ in range(30)}
    assert answers == {True, False}  # the echo pool answers with the body, the override's llm-sim with text


def test_pools_are_checked_when_the_config_is_created(sm):
    sm.create_model(ModelName="m", PrimaryContainer={"Image": ECHO_IMAGE})
    for bad, text in ((pools(G5, G5), "different instance type; ml.g5.2xlarge"),
                      ([{"InstanceType": G5, "Priority": 2}, {"InstanceType": G6, "Priority": 2}], "different priority; 2"),
                      (pools(G5, override={G5: "nope"}), "Could not find model")):
        with pytest.raises(ClientError) as info:
            sm.create_endpoint_config(EndpointConfigName="bad", ProductionVariants=[{
                "VariantName": "v", "ModelName": "m", "InstancePools": bad, "InitialInstanceCount": 1}])
        assert info.value.response["Error"]["Code"] == "ValidationException"
        assert text in info.value.response["Error"]["Message"]


def test_inference_component_hosts_come_from_the_pools_by_priority(server, sm, rt):
    server.capacity("ml.g6e.12xlarge", 1)
    sm.create_endpoint_config(EndpointConfigName="ics-config", ExecutionRoleArn=ROLE, ProductionVariants=[{
        "VariantName": "AllTraffic", "InstancePools": pools("ml.g6e.12xlarge", "ml.g5.12xlarge"),
        "InitialInstanceCount": 2}])
    sm.create_endpoint(EndpointName="ics", EndpointConfigName="ics-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ics", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert pool_counts(sm, "ics") == [("ml.g6e.12xlarge", 1), ("ml.g5.12xlarge", 1)]
    sm.create_model(ModelName="m", PrimaryContainer={"Image": ECHO_IMAGE})
    sm.create_inference_component(
        InferenceComponentName="ic", EndpointName="ics", VariantName="AllTraffic",
        Specification={"ModelName": "m", "ComputeResourceRequirements": {
            "NumberOfAcceleratorDevicesRequired": 4, "MinMemoryRequiredInMb": 1024}},
        RuntimeConfig={"CopyCount": 2})
    eventually(lambda: sm.describe_inference_component(InferenceComponentName="ic")["InferenceComponentStatus"]
               == "InService", timeout=60)
    copies = server.endpoint_view("ics")["inference_components"]["ic"]["copies"]
    assert sorted(c["instance_type"] for c in copies) == ["ml.g5.12xlarge", "ml.g6e.12xlarge"]
    assert rt.invoke_endpoint(EndpointName="ics", InferenceComponentName="ic", Body=b"x")["Body"].read() == b"x"


def test_component_specifications_per_instance_type_place_and_run_each_types_own(server, sm, rt):
    server.capacity("ml.g6e.12xlarge", 1)
    sm.create_endpoint_config(EndpointConfigName="per-type-config", ExecutionRoleArn=ROLE, ProductionVariants=[{
        "VariantName": "AllTraffic", "InstancePools": pools("ml.g6e.12xlarge", "ml.g5.12xlarge"),
        "InitialInstanceCount": 3, "RoutingConfig": {"RoutingStrategy": "RANDOM"}}])  # one L40S host, two A10G
    sm.create_endpoint(EndpointName="per-type", EndpointConfigName="per-type-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="per-type", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    sm.create_model(ModelName="echoes", PrimaryContainer={"Image": ECHO_IMAGE})
    sm.create_model(ModelName="writes", PrimaryContainer={"Image": LLM_SIM, "Environment": {
        "LLM_SIM_DECODE_MS_PER_TOKEN": "0", "LLM_SIM_PREFILL_BASE_MS": "0", "LLM_SIM_PREFILL_MS_PER_TOKEN": "0"}})

    def spec(itype: str, model: str, gpus: int) -> dict:
        return {"InstanceType": itype, "ModelName": model, "ComputeResourceRequirements": {
            "NumberOfAcceleratorDevicesRequired": gpus, "MinMemoryRequiredInMb": 1024}}

    specs = [spec("ml.g6e.12xlarge", "echoes", 2), spec("ml.g5.12xlarge", "writes", 4)]
    for bad, text in (({"Specification": specs[0], "Specifications": specs}, "not both"),
                      ({"Specifications": [specs[0], {**specs[1], "InstanceType": "ml.g6e.12xlarge"}]}, "more than once"),
                      ({"Specifications": [spec("ml.p5.48xlarge", "echoes", 1)]}, "does not have"),
                      ({"Specifications": [specs[0], {k: v for k, v in specs[1].items() if k != "InstanceType"}]},
                       "must specify InstanceType")):
        with pytest.raises(ClientError) as info:
            sm.create_inference_component(InferenceComponentName="bad", EndpointName="per-type",
                                          VariantName="AllTraffic", RuntimeConfig={"CopyCount": 1}, **bad)
        assert text in info.value.response["Error"]["Message"]
    sm.create_inference_component(InferenceComponentName="both", EndpointName="per-type", VariantName="AllTraffic",
                                  Specifications=specs, RuntimeConfig={"CopyCount": 2})
    described = eventually(lambda: (lambda d: d if d["InferenceComponentStatus"] != "Creating" else None)(
        sm.describe_inference_component(InferenceComponentName="both")), timeout=60)
    assert described["InferenceComponentStatus"] == "InService", described.get("FailureReason")
    assert "Specification" not in described
    assert [(s["InstanceType"], s["ModelName"]) for s in described["Specifications"]] == [
        ("ml.g6e.12xlarge", "echoes"), ("ml.g5.12xlarge", "writes")]
    assert described["RuntimeConfig"]["CurrentCopyCount"] == 2
    view = server.endpoint_view("per-type")
    hosts = {h["id"]: h for h in view["variants"][0]["hosts"]}
    copies = view["inference_components"]["both"]["copies"]
    # SPREAD: a 2-GPU copy on the L40S host (the most room), a 4-GPU copy on an A10G host
    assert sorted(c["instance_type"] for c in copies) == ["ml.g5.12xlarge", "ml.g6e.12xlarge"]
    for c in copies:
        assert hosts[c["placed_on"]]["instance_type"] == c["instance_type"]
        assert hosts[c["placed_on"]]["free"]["accelerators"] == (2 if c["instance_type"] == "ml.g6e.12xlarge" else 0)
    body = json.dumps({"inputs": "hello", "parameters": {"max_new_tokens": 2}}).encode()
    echoed = {rt.invoke_endpoint(EndpointName="per-type", InferenceComponentName="both", Body=body,
                                 ContentType="application/json")["Body"].read() == body for _ in range(30)}
    assert echoed == {True, False}  # echo copies on one type, llm-sim on the other

    # an update rolls the copies over, each to its host type's new specification (the spare A10G
    # host gives the first new copy room)
    sm.update_inference_component(InferenceComponentName="both", Specifications=[
        spec("ml.g6e.12xlarge", "writes", 2), spec("ml.g5.12xlarge", "writes", 4)])
    eventually(lambda: sm.describe_inference_component(InferenceComponentName="both")["InferenceComponentStatus"]
               == "InService", timeout=60)
    described = sm.describe_inference_component(InferenceComponentName="both")
    assert {s["ModelName"] for s in described["Specifications"]} == {"writes"}
    assert {rt.invoke_endpoint(EndpointName="per-type", InferenceComponentName="both", Body=body,
                               ContentType="application/json")["Body"].read() == body for _ in range(10)} == {False}


def test_consolidation_moves_copies_onto_fewer_instances_without_a_failed_call(fast):
    """At --clock-speed 60 a five-minute cooldown is five seconds."""
    sm, rt = fast.client(), fast.client("sagemaker-runtime")
    sm.create_model(ModelName="m", PrimaryContainer={"Image": ECHO_IMAGE, "Environment": {"ECHO_LATENCY_MS": "5"}})
    for name, strategy in (("packs", "CONSOLIDATION"), ("idles", "IDLE_RELEASE")):
        sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ExecutionRoleArn=ROLE, ProductionVariants=[{
            "VariantName": "AllTraffic", "InstanceType": "ml.g5.12xlarge", "InitialInstanceCount": 3,
            "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 3,
                                       "ScaleInPolicy": {"Strategy": strategy, "MaximumStepSize": 2,
                                                         "CooldownInMinutes": 5}}}])
        sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    for name in ("packs", "idles"):
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        sm.create_inference_component(
            InferenceComponentName=f"{name}-ic", EndpointName=name, VariantName="AllTraffic",
            Specification={"ModelName": "m", "ComputeResourceRequirements": {
                "NumberOfAcceleratorDevicesRequired": 1, "MinMemoryRequiredInMb": 1024}},
            RuntimeConfig={"CopyCount": 3})
    for name in ("packs", "idles"):
        eventually(lambda ic=f"{name}-ic": sm.describe_inference_component(InferenceComponentName=ic)[
            "InferenceComponentStatus"] == "InService", timeout=60)
        hosts = fast.endpoint_view(name)["variants"][0]["hosts"]
        assert [len(h["copies"]) for h in hosts] == [1, 1, 1]  # SPREAD: one copy on each instance

    stop, calls, failures = threading.Event(), [0], []

    def caller() -> None:
        while not stop.is_set():
            try:
                rt.invoke_endpoint(EndpointName="packs", InferenceComponentName="packs-ic", Body=b"x")
                calls[0] += 1
            except ClientError as exc:
                failures.append(exc.response["Error"])

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        eventually(lambda: sm.describe_endpoint(EndpointName="packs")["ProductionVariants"][0][
            "CurrentInstanceCount"] == 1, timeout=90, interval=0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == [] and calls[0] > 0
    hosts = fast.endpoint_view("packs")["variants"][0]["hosts"]
    assert len(hosts) == 1 and len(hosts[0]["copies"]) == 3
    described = sm.describe_inference_component(InferenceComponentName="packs-ic")
    assert described["RuntimeConfig"]["CurrentCopyCount"] == 3
    # IDLE_RELEASE releases only instances left with no copies: all three still hold one
    assert [len(h["copies"]) for h in fast.endpoint_view("idles")["variants"][0]["hosts"]] == [1, 1, 1]


def test_managed_scaling_adds_hosts_by_pool_priority_and_releases_the_fallback_ones_first(server, sm):
    server.capacity("ml.g6e.12xlarge", 1)
    sm.create_endpoint_config(EndpointConfigName="grows-config", ExecutionRoleArn=ROLE, ProductionVariants=[{
        "VariantName": "AllTraffic", "InstancePools": pools("ml.g6e.12xlarge", "ml.g5.12xlarge"),
        "InitialInstanceCount": 1,
        "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 3}}])
    sm.create_endpoint(EndpointName="grows", EndpointConfigName="grows-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="grows", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    sm.create_model(ModelName="m", PrimaryContainer={"Image": ECHO_IMAGE})

    def copies(count: int) -> None:
        if count == 3:
            sm.create_inference_component(
                InferenceComponentName="whole", EndpointName="grows", VariantName="AllTraffic",
                Specification={"ModelName": "m", "ComputeResourceRequirements": {
                    "NumberOfAcceleratorDevicesRequired": 4, "MinMemoryRequiredInMb": 1024}},
                RuntimeConfig={"CopyCount": count})
        else:
            sm.update_inference_component_runtime_config(InferenceComponentName="whole",
                                                         DesiredRuntimeConfig={"CopyCount": count})
        eventually(lambda: (lambda d: d["InferenceComponentStatus"] == "InService"
                            and d["RuntimeConfig"]["CurrentCopyCount"] == count)(
            sm.describe_inference_component(InferenceComponentName="whole")), timeout=60)

    copies(3)  # a whole instance each: the L40S host, then two more from the fallback pool
    assert pool_counts(sm, "grows") == [("ml.g6e.12xlarge", 1), ("ml.g5.12xlarge", 2)]
    copies(1)  # the copies on fallback hosts go first, and their hosts with them
    assert pool_counts(sm, "grows") == [("ml.g6e.12xlarge", 1), ("ml.g5.12xlarge", 0)]
