"""InvokeInferenceRouterAsync (issue 28, item 3) through boto3 at the one URL, on a server whose
clock runs 60 times faster: a MaxTimeInBacklogSeconds of 60 lasts one second. Requests queue on
a destination, move to another when they wait too long there (never once started), and each
gets one outcome: its answer at the target's OutputLocation and a SuccessTopic notification, or
a failure object and one ErrorTopic notification."""

import json

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import client
from tests.integration.test_async_inference import notifications, topics_into_queues
from tests.integration.test_fleet import eventually


def async_endpoint(sm, name: str, latency_ms: int) -> str:
    sm.create_model(ModelName=f"{name}-m", PrimaryContainer={
        "Image": "sagemaker-emu/echo", "Environment": {"ECHO_LATENCY_MS": str(latency_ms)}})
    sm.create_endpoint_config(EndpointConfigName=f"{name}-c", AsyncInferenceConfig={
        "OutputConfig": {"S3OutputPath": f"s3://routed/{name}-own"},
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1}}, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": f"{name}-m", "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return sm.describe_endpoint(EndpointName=name)["EndpointArn"]


@pytest.fixture
def aws(fast):
    fast.reset()
    s3, sqs = client(fast.url, "s3"), client(fast.url, "sqs")
    s3.create_bucket(Bucket="routed")
    topics = topics_into_queues(fast.url, "routed")
    for n in range(8):
        s3.put_object(Bucket="routed", Key=f"in/{n}.json", Body=json.dumps({"n": n}).encode())
    yield s3, sqs, topics
    fast.reset()


def target(name: str, destinations: list[str], topics: dict, backlog_s: int = 60) -> dict:
    return {"Name": name, "Destinations": [{"ResourceArn": a} for a in destinations], "AsyncInferenceConfig": {
        "OutputConfig": {"S3OutputPath": "s3://routed/out", "S3FailurePath": "s3://routed/failed",
                         "NotificationConfig": {"SuccessTopic": topics["success"][0],
                                                "ErrorTopic": topics["error"][0]}},
        "ClientConfig": {"MaxTimeInBacklogSeconds": backlog_s}}}


def settled(sm, name: str) -> None:
    eventually(lambda: sm.describe_inference_router(InferenceRouterName=name)["Status"] == "InService")


def test_requests_move_on_after_the_backlog_limit_and_each_gets_one_outcome(fast, aws):
    s3, sqs, topics = aws
    sm, west = client(fast.url), client(fast.url, region="us-west-2")
    busy = async_endpoint(sm, "busy", latency_ms=2500)  # one call at a time, 2.5 s each
    spare = async_endpoint(west, "spare", latency_ms=0)
    sm.create_inference_router(InferenceRouterName="backlog", RoutingTargets=[
        target("queued", [busy, spare], topics), target("lonely", [busy], topics)])
    settled(sm, "backlog")
    runtime = client(fast.url, "sagemaker-inference-router-runtime")

    def submit(target_name: str, n: int, **extra) -> str:
        answer = runtime.invoke_inference_router_async(
            InferenceRouterName="backlog", RoutingTargetName=target_name, InputLocation=f"s3://routed/in/{n}.json",
            ContentType="application/json", **extra)
        assert answer["OutputLocation"] == f"s3://routed/out/{answer['InferenceId']}.out"
        assert answer["FailureLocation"] == f"s3://routed/failed/{answer['InferenceId']}-error.out"
        return answer["InferenceId"]

    first, second, third = (submit("queued", n) for n in range(3))  # the first starts on busy; two wait there
    served = {m["inferenceId"]: m["responseParameters"]["invokedRoutedResourceArn"]
              for m in notifications(sqs, topics["success"][1], 3)}
    assert served == {first: busy, second: spare, third: spare}  # moved after 60 s of backlog, not the started one
    for n, inference_id in enumerate((first, second, third)):
        body = s3.get_object(Bucket="routed", Key=f"out/{inference_id}.out")["Body"].read()
        assert json.loads(body) == {"n": n}

    running = submit("lonely", 3)
    short_lived = submit("lonely", 4, RequestTTLSeconds=60)  # its time to live runs out first
    stranded = submit("lonely", 5)  # its only destination keeps it waiting: every destination tried
    failed = {m["inferenceId"]: m for m in notifications(sqs, topics["error"][1], 2)}
    assert set(failed) == {short_lived, stranded}
    assert "time to live (60 s) ran out" in failed[short_lived]["failureReason"]
    assert "Every destination of routing target lonely was tried" in failed[stranded]["failureReason"]
    assert failed[stranded]["responseParameters"] == {"failureLocation": f"s3://routed/failed/{stranded}-error.out"}
    assert b"Every destination" in s3.get_object(Bucket="routed", Key=f"failed/{stranded}-error.out")["Body"].read()
    [done] = notifications(sqs, topics["success"][1], 1)
    assert done["inferenceId"] == running and done["requestParameters"]["routingTargetName"] == "lonely"


def test_a_real_time_target_refuses_async_requests_and_the_reverse(fast, aws):
    sm = client(fast.url)
    busy = async_endpoint(sm, "busy", latency_ms=0)
    sm.create_inference_router(InferenceRouterName="kinds", RoutingTargets=[target("queued", [busy], aws[2])])
    settled(sm, "kinds")
    runtime = client(fast.url, "sagemaker-inference-router-runtime")
    with pytest.raises(ClientError) as info:
        runtime.invoke_inference_router(InferenceRouterName="kinds", RoutingTargetName="queued", Body=b"{}")
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "InvokeInferenceRouterAsync" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        runtime.invoke_inference_router_async(InferenceRouterName="kinds", RoutingTargetName="nope",
                                              InputLocation="s3://routed/in/0.json")
    assert info.value.response["Error"]["Code"] == "ValidationException"


def test_a_request_waiting_on_a_deleted_destination_moves_at_once(fast, aws):
    s3, sqs, topics = aws
    sm, west = client(fast.url), client(fast.url, region="us-west-2")
    busy = async_endpoint(sm, "busy", latency_ms=1500)
    spare = async_endpoint(west, "spare", latency_ms=0)
    # six hours of backlog allowed (six minutes at this clock): only the deletion can move it
    sm.create_inference_router(InferenceRouterName="patient", RoutingTargets=[
        target("queued", [busy, spare], topics, backlog_s=21600)])
    settled(sm, "patient")
    runtime = client(fast.url, "sagemaker-inference-router-runtime")
    running, waiting = (runtime.invoke_inference_router_async(
        InferenceRouterName="patient", RoutingTargetName="queued", InputLocation=f"s3://routed/in/{n}.json")[
        "InferenceId"] for n in range(2))
    sm.delete_endpoint(EndpointName="busy")
    heard: dict = {}
    for _ in range(20):  # the running one may be heard of first (it ran on busy, and is not moved)
        heard.update({m["inferenceId"]: m for m in notifications(sqs, topics["success"][1], 1)})
        if waiting in heard:
            break
    moved = heard[waiting]
    assert moved["responseParameters"]["invokedRoutedResourceArn"] == spare
    assert running not in heard or heard[running]["responseParameters"]["invokedRoutedResourceArn"] == busy
    assert json.loads(s3.get_object(Bucket="routed", Key=f"out/{waiting}.out")["Body"].read()) == {"n": 1}


def test_invocation_timeout_seconds_is_the_destinations_limit(fast, aws):
    s3, sqs, topics = aws
    sm = client(fast.url)
    slow = async_endpoint(sm, "slow", latency_ms=2500)
    sm.create_inference_router(InferenceRouterName="hurried", RoutingTargets=[target("queued", [slow], topics)])
    settled(sm, "hurried")
    runtime = client(fast.url, "sagemaker-inference-router-runtime")
    inference_id = runtime.invoke_inference_router_async(
        InferenceRouterName="hurried", RoutingTargetName="queued", InputLocation="s3://routed/in/0.json",
        InvocationTimeoutSeconds=1)["InferenceId"]
    [failed] = notifications(sqs, topics["error"][1], 1)
    assert failed["inferenceId"] == inference_id and "timed out" in failed["failureReason"]
    assert failed["responseParameters"]["invokedRoutedResourceArn"] == slow  # it ran there: not moved


def pooled_async_endpoint(sm, name: str) -> str:
    sm.create_model(ModelName=f"{name}-m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    sm.create_endpoint_config(EndpointConfigName=f"{name}-c", AsyncInferenceConfig={
        "OutputConfig": {"S3OutputPath": f"s3://routed/{name}-own"}}, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": f"{name}-m", "InitialInstanceCount": 1, "InstancePools": [
                {"InstanceType": "ml.g6e.2xlarge", "Priority": 1}, {"InstanceType": "ml.g5.2xlarge", "Priority": 2}]}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return sm.describe_endpoint(EndpointName=name)["EndpointArn"]


def test_instance_pool_order_prefers_the_first_pools_type_over_the_routers_region(fast, aws):
    s3, sqs, topics = aws
    sm, west = client(fast.url), client(fast.url, region="us-west-2")

    fast.capacity("ml.g6e.2xlarge", 0)
    near = pooled_async_endpoint(sm, "near")  # no L40S to be had: its instance is the fallback A10G
    fast.capacity("ml.g6e.2xlarge", None)
    far = pooled_async_endpoint(west, "far")  # an L40S, its first pool's type
    assert [p["CurrentInstanceCount"] for p in sm.describe_endpoint(EndpointName="near")["ProductionVariants"][0][
        "InstancePools"]] == [0, 1]
    by_pool = {**target("by-pool", [near, far], topics), "RoutingPreference": "InstancePoolOrder"}
    sm.create_inference_router(InferenceRouterName="pools", RoutingTargets=[by_pool, target("local", [near, far], topics)])
    settled(sm, "pools")
    runtime = client(fast.url, "sagemaker-inference-router-runtime")
    ids = {runtime.invoke_inference_router_async(InferenceRouterName="pools", RoutingTargetName=name,
                                                 InputLocation="s3://routed/in/0.json")["InferenceId"]: name
           for name in ("by-pool", "local")}
    served = {ids[m["inferenceId"]]: m["responseParameters"]["invokedRoutedResourceArn"]
              for m in notifications(sqs, topics["success"][1], 2)}
    assert served == {"by-pool": far, "local": near}

    # InstancePoolOrder needs every destination to list the same pools: an endpoint of one type fails it
    plain = async_endpoint(sm, "plain", latency_ms=0)
    sm.create_inference_router(InferenceRouterName="unpooled", RoutingTargets=[
        {**target("by-pool", [far, plain], topics), "RoutingPreference": "InstancePoolOrder"}])
    described = eventually(lambda: (lambda d: d if d["Status"] != "Creating" else None)(
        sm.describe_inference_router(InferenceRouterName="unpooled")))
    assert described["Status"] == "Failed" and "same two or more instance types" in described["StatusReason"]
