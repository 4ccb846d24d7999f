"""Inference routers (issue 28) through boto3's `sagemaker` and
`sagemaker-inference-router-runtime` clients: the control plane (statuses, validation,
RoutingStatus worked out at Describe, conflicts, idempotency, tags) and InvokeInferenceRouter
(destinations by Region and health, the documented reasons, one retry elsewhere)."""

import json

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import EmulatorProcess, client, deploy
from tests.integration.test_fleet import eventually

OTHER_ACCOUNT = "210987654321"


def settled(sm, name: str) -> dict:
    return eventually(lambda: (lambda d: d if d["Status"] not in ("Creating", "Updating", "Deleting") else None)(
        sm.describe_inference_router(InferenceRouterName=name)))


def error(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def async_endpoint(sm, name: str) -> str:
    sm.create_model(ModelName=f"{name}-m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    sm.create_endpoint_config(EndpointConfigName=f"{name}-c", AsyncInferenceConfig={
        "OutputConfig": {"S3OutputPath": "s3://routers/out"}}, ProductionVariants=[{
            "VariantName": "v", "ModelName": f"{name}-m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return sm.describe_endpoint(EndpointName=name)["EndpointArn"]


def test_a_router_is_created_and_each_destination_checked_when_described(server, sm):
    deploy(sm, "local")
    west = client(server.url, region="us-west-2")
    deploy(west, "remote")
    local = sm.describe_endpoint(EndpointName="local")["EndpointArn"]
    remote = west.describe_endpoint(EndpointName="remote")["EndpointArn"]
    missing = local.replace("endpoint/local", "endpoint/missing")
    foreign = local.replace("123456789012", OTHER_ACCOUNT)
    arn = sm.create_inference_router(InferenceRouterName="r1", Tags=[{"Key": "team", "Value": "ml"}], RoutingTargets=[
        {"Name": "chat", "Destinations": [{"ResourceArn": a} for a in (local, remote, missing, foreign)]}],
    )["InferenceRouterArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:inference-router/r1"
    described = settled(sm, "r1")
    assert described["Status"] == "InService" and "StatusReason" not in described
    assert [(d["ResourceArn"], d["RoutingStatus"]) for d in described["RoutingTargets"][0]["Destinations"]] == [
        (local, "Routable"), (remote, "Routable"), (missing, "Unroutable"), (foreign, "Unknown")]
    sm.delete_endpoint(EndpointName="local")
    eventually(lambda: [d["RoutingStatus"] for d in sm.describe_inference_router(InferenceRouterName="r1")[
        "RoutingTargets"][0]["Destinations"]][0] == "Unroutable")  # worked out at each call
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    [summary] = sm.list_inference_routers()["InferenceRouters"]
    assert summary["InferenceRouterName"] == "r1" and summary["InferenceRouterArn"] == arn


def test_a_destination_of_the_wrong_kind_fails_a_new_router_and_refuses_an_update(server, sm):
    deploy(sm, "realtime")
    realtime = sm.describe_endpoint(EndpointName="realtime")["EndpointArn"]
    client(server.url, "s3").create_bucket(Bucket="routers")
    asynchronous = async_endpoint(sm, "queued")
    sm.create_inference_router(InferenceRouterName="mixed", RoutingTargets=[
        {"Name": "now", "Destinations": [{"ResourceArn": asynchronous}]}])
    failed = settled(sm, "mixed")
    assert failed["Status"] == "Failed" and asynchronous in failed["StatusReason"]
    assert "real-time routing target needs real-time destinations" in failed["StatusReason"]
    code, message = error(lambda: sm.update_inference_router(InferenceRouterName="mixed", RoutingTargets=[
        {"Name": "later", "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "s3://routers/out", "S3FailurePath": "s3://routers/failed"}},
         "Destinations": [{"ResourceArn": realtime}]}]))
    assert code == "ValidationException" and "asynchronous routing target needs asynchronous" in message
    sm.update_inference_router(InferenceRouterName="mixed", RoutingTargets=[
        {"Name": "now", "Destinations": [{"ResourceArn": realtime}]},
        {"Name": "later", "Destinations": [{"ResourceArn": asynchronous}],
         "AsyncInferenceConfig": {"OutputConfig": {"S3OutputPath": "s3://routers/out", "S3FailurePath": "s3://routers/failed"}}}])
    updated = settled(sm, "mixed")
    assert updated["Status"] == "InService" and "StatusReason" not in updated
    assert [t["Name"] for t in updated["RoutingTargets"]] == ["now", "later"]  # every target replaced at once


@pytest.mark.parametrize("targets, text", [
    ([{"Name": "t", "Destinations": [{"ResourceArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/a"}]}] * 2,
     "Routing target names must be unique within the inference router: t."),
    ([{"Name": "t", "Destinations": [{"ResourceArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/a"}] * 2}],
     "Routing target t lists a destination more than once"),
    ([{"Name": "t", "RoutingPreference": "InstancePoolOrder",
       "Destinations": [{"ResourceArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/a"}]}],
     "InstancePoolOrder is supported only for asynchronous routing targets"),
    ([{"Name": "t", "Destinations": [{"ResourceArn": "arn:aws-cn:sagemaker:cn-north-1:123456789012:endpoint/a"}]}],
     "is not in the inference router's partition (aws)"),
])
def test_targets_that_break_the_models_rules_are_refused(sm, targets, text):
    code, message = error(lambda: sm.create_inference_router(InferenceRouterName="bad", RoutingTargets=targets))
    assert code == "ValidationException" and text in message
    assert sm.list_inference_routers()["InferenceRouters"] == []


def test_shapes_the_model_constrains_are_refused_by_the_schema(sm_unvalidated):
    code, message = error(lambda: sm_unvalidated.create_inference_router(InferenceRouterName="bad", RoutingTargets=[
        {"Name": "t", "Destinations": [{"ResourceArn": "arn:aws:s3:::bucket/key-that-is-long"}]}]))
    assert code == "ValidationException" and "resourceArn" in message.replace("ResourceArn", "resourceArn")
    code, _ = error(lambda: sm_unvalidated.create_inference_router(InferenceRouterName="bad", RoutingTargets=[]))
    assert code == "ValidationException"


def test_duplicates_client_tokens_and_missing_routers(sm):
    targets = [{"Name": "t", "Destinations": [{"ResourceArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/a"}]}]
    first = sm.create_inference_router(InferenceRouterName="once", RoutingTargets=targets, ClientToken="token-1")
    again = sm.create_inference_router(InferenceRouterName="once", RoutingTargets=targets, ClientToken="token-1")
    assert again["InferenceRouterArn"] == first["InferenceRouterArn"]
    code, message = error(lambda: sm.create_inference_router(InferenceRouterName="once", RoutingTargets=targets))
    assert code == "ResourceAlreadyExists" and first["InferenceRouterArn"] in message
    for call in (lambda: sm.describe_inference_router(InferenceRouterName="none"),
                 lambda: sm.update_inference_router(InferenceRouterName="none", RoutingTargets=targets),
                 lambda: sm.delete_inference_router(InferenceRouterName="none")):
        assert error(call) == ("ResourceNotFound", 'Could not find inference router '
                                                   '"arn:aws:sagemaker:us-east-1:123456789012:inference-router/none".')


def test_a_router_that_is_changing_refuses_updates_and_deletion():
    srv = EmulatorProcess("--min-transition-seconds", "1")
    try:
        sm = client(srv.url)
        targets = [{"Name": "t", "Destinations": [{"ResourceArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/a"}]}]
        sm.create_inference_router(InferenceRouterName="busy", RoutingTargets=targets)
        assert sm.describe_inference_router(InferenceRouterName="busy")["Status"] == "Creating"
        assert error(lambda: sm.update_inference_router(InferenceRouterName="busy", RoutingTargets=targets))[0] == \
            "ConflictException"
        assert error(lambda: sm.delete_inference_router(InferenceRouterName="busy"))[0] == "ConflictException"
        assert settled(sm, "busy")["Status"] == "InService"
        sm.delete_inference_router(InferenceRouterName="busy")
        assert sm.describe_inference_router(InferenceRouterName="busy")["Status"] == "Deleting"
        eventually(lambda: sm.list_inference_routers()["InferenceRouters"] == [])
    finally:
        srv.stop()


def routed(runtime, router: str = "spread", target: str = "echo", body: bytes = b'{"x": 1}') -> dict:
    answer = runtime.invoke_inference_router(InferenceRouterName=router, RoutingTargetName=target, Body=body,
                                             ContentType="application/json")
    return {"body": answer["Body"].read(), "arn": answer["InvokedRoutedResourceArn"], "reason": answer["RoutingReason"],
            "variant": answer["InvokedProductionVariant"]}


def test_invoke_inference_router_prefers_its_region_and_moves_on_as_destinations_go(server, sm):
    """Issue 28, item 2: the destination and the documented reason for each case, through boto3's
    sagemaker-inference-router-runtime client at the one URL."""
    west, central = client(server.url, region="us-west-2"), client(server.url, region="eu-central-1")
    deploy(sm, "local")
    deploy(west, "west")
    deploy(central, "central")
    local, west_arn, central_arn = (c.describe_endpoint(EndpointName=n)["EndpointArn"]
                                    for c, n in ((sm, "local"), (west, "west"), (central, "central")))
    sm.create_inference_router(InferenceRouterName="spread", RoutingTargets=[{"Name": "echo", "Destinations": [
        {"ResourceArn": a} for a in (west_arn, local, central_arn)]}])
    settled(sm, "spread")
    runtime = client(server.url, "sagemaker-inference-router-runtime")
    first = routed(runtime)
    assert first == {"body": b'{"x": 1}', "arn": local, "reason": "local-preferred", "variant": "AllTraffic"}

    server.post("/_emu/faults", b'{"kind": "throttle", "endpoint": "local", "times": 1}',
                {"Content-Type": "application/json"})
    moved = routed(runtime)  # throttled before the model answered: retried once elsewhere
    assert moved["arn"] in (west_arn, central_arn) and moved["reason"] == "failover"

    sm.delete_endpoint(EndpointName="local")
    eventually(lambda: routed(runtime)["reason"] == "capacity-available")  # two other Regions could take it
    west.delete_endpoint(EndpointName="west")
    eventually(lambda: routed(runtime) == {"body": b'{"x": 1}', "arn": central_arn, "reason": "only-healthy",
                                           "variant": "AllTraffic"})
    _, _, text = server.post("/_emu/metrics", method="GET")  # each decision, counted once, by reason
    decisions = text.decode()
    assert f'sagemaker_emu_router_decisions_total{{router="spread",destination="{local}",reason="local-preferred"}} 1' \
        in decisions
    assert f'destination="{central_arn}",reason="only-healthy"}}' in decisions


def test_a_models_own_error_is_not_retried_and_refusals_use_the_router_runtimes_codes(server, sm):
    deploy(sm, "llm", container={"Image": "sagemaker-emu/llm-sim"})
    deploy(sm, "spare")
    llm, spare = (sm.describe_endpoint(EndpointName=n)["EndpointArn"] for n in ("llm", "spare"))
    sm.create_inference_router(InferenceRouterName="strict", RoutingTargets=[{"Name": "gen", "Destinations": [
        {"ResourceArn": llm}, {"ResourceArn": spare}]}])
    settled(sm, "strict")
    runtime = client(server.url, "sagemaker-inference-router-runtime")
    served_before = sum(i["served"] for v in server.endpoint_view("spare")["variants"] for i in v["instances"])
    code, message = error(lambda: routed(runtime, "strict", "gen", b"not json"))
    assert code == "ModelError" and "Received client error (422) from primary" in message
    assert sum(i["served"] for v in server.endpoint_view("spare")["variants"] for i in v["instances"]) == served_before
    metrics = server.post("/_emu/metrics", method="GET")[2].decode()
    assert f'aws_sagemaker_inference_router_invocations_total{{router="strict",routing_target="gen",destination="{llm}",' \
           'error_type="ModelError"} 1' in metrics
    assert error(lambda: routed(runtime, "none", "gen"))[0] == "ValidationException"
    with pytest.raises(ClientError) as info:  # "HTTP 413, with no error code"
        routed(runtime, "strict", "gen", b"x" * (6 * 1024 * 1024 + 1))
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "x-amzn-errortype" not in info.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert error(lambda: routed(runtime, "strict", "nope"))[0] == "ValidationException"
    code, message = error(lambda: runtime.invoke_inference_router_async(
        InferenceRouterName="strict", RoutingTargetName="gen", InputLocation="s3://b/k"))
    assert code == "ValidationException" and "is real-time: invoke it with InvokeInferenceRouter" in message


def test_a_slow_local_destination_is_used_last_and_taken_back_when_it_recovers(server, sm):
    """Issue 28: degraded destinations are used after the others, not excluded; a slow one gets a
    probe now and then, and a probe that comes back well brings the traffic back."""
    west = client(server.url, region="us-west-2")
    deploy(sm, "near")
    deploy(west, "far")
    near, far = sm.describe_endpoint(EndpointName="near")["EndpointArn"], west.describe_endpoint(
        EndpointName="far")["EndpointArn"]
    sm.create_inference_router(InferenceRouterName="steady", RoutingTargets=[{"Name": "echo", "Destinations": [
        {"ResourceArn": near}, {"ResourceArn": far}]}])
    settled(sm, "steady")
    runtime = client(server.url, "sagemaker-inference-router-runtime")
    for _ in range(5):  # what near does when well
        assert routed(runtime, "steady")["arn"] == near
    server.post("/_emu/faults", b'{"kind": "slow_instance", "endpoint": "near", "latency_ms": 200}',
                {"Content-Type": "application/json"})
    eventually(lambda: routed(runtime, "steady") == {"body": b'{"x": 1}', "arn": far, "reason": "failover",
                                                      "variant": "AllTraffic"})
    later = [routed(runtime, "steady") for _ in range(10)]
    assert {c["reason"] for c in later} == {"failover"}  # moved away from a slow local destination
    assert sum(c["arn"] == near for c in later) <= 1  # at most one probe a second goes back to it
    metrics = server.post("/_emu/metrics", method="GET")[2].decode()  # SageMaker's router metrics, Prometheus-named
    assert f'aws_sagemaker_inference_router_destination_status{{router="steady",destination="{near}",' \
           'state="overloaded"} 1' in metrics
    assert f'aws_sagemaker_inference_router_destination_status{{router="steady",destination="{far}",' \
           'state="healthy"} 1' in metrics
    answered_by_far = f'aws_sagemaker_inference_router_invocations_total{{router="steady",routing_target="echo",' \
                      f'destination="{far}",error_type=""}}'
    assert int(next(line for line in metrics.splitlines() if line.startswith(answered_by_far)).split()[-1]) >= 9
    assert 'aws_sagemaker_inference_router_overhead_duration_seconds_count{router="steady",routing_target="echo"}' \
        in metrics
    server.post("/_emu/faults", method="DELETE")
    eventually(lambda: routed(runtime, "steady")["reason"] == "local-preferred")  # a good probe, then home
    assert routed(runtime, "steady")["arn"] == near


def test_a_cross_region_cap_throttles_other_regions_routers_only():
    """Issue 28, item 4: CrossRegionTrafficConfig caps what routers in other Regions send to an
    endpoint (ThrottlingException over it); direct calls and routers in its own Region are not
    counted. The clock runs 100 times slower, so the cap's second lasts 100 s of the test."""
    server = EmulatorProcess("--clock-speed", "0.01")
    try:
        east, west = client(server.url), client(server.url, region="us-west-2")
        west.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
        variant = {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": "ml.m5.large",
                   "InitialInstanceCount": 1}
        cap = {"MaxInvocationsPerSecondPerInstance": 2, "MaxCrossRegionPercentPerEndpoint": 50}  # 1 a second
        west.create_endpoint_config(EndpointConfigName="capped", ProductionVariants=[variant],
                                    CrossRegionTrafficConfig=cap)
        west.create_endpoint(EndpointName="capped", EndpointConfigName="capped")
        west.get_waiter("endpoint_in_service").wait(EndpointName="capped", WaiterConfig={"Delay": 1})
        described = west.describe_endpoint(EndpointName="capped")
        assert described["CrossRegionTrafficConfig"] == cap
        for region_client, name in ((east, "from-east"), (west, "from-west")):
            region_client.create_inference_router(InferenceRouterName=name, RoutingTargets=[
                {"Name": "echo", "Destinations": [{"ResourceArn": described["EndpointArn"]}]}])
            settled(region_client, name)
        east_runtime = client(server.url, "sagemaker-inference-router-runtime")
        west_runtime = client(server.url, "sagemaker-inference-router-runtime", region="us-west-2")
        assert routed(east_runtime, "from-east")["reason"] == "only-healthy"
        code, message = error(lambda: routed(east_runtime, "from-east"))
        assert code == "ThrottlingException" and "cross-Region traffic cap (1 requests per second" in message
        rt = client(server.url, "sagemaker-runtime", region="us-west-2")
        for _ in range(3):  # neither direct calls nor the endpoint's own Region's routers count
            assert rt.invoke_endpoint(EndpointName="capped", Body=b"{}", ContentType="application/json")[
                "Body"].read() == b"{}"
            assert routed(west_runtime, "from-west")["reason"] == "local-preferred"

        code, message = error(lambda: west.create_endpoint_config(
            EndpointConfigName="queued", ProductionVariants=[variant], CrossRegionTrafficConfig=cap,
            AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://b/out"}}))
        assert code == "ValidationException" and "AsyncInferenceConfig" in message
        serverless = {"VariantName": "v", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 2048,
                                                                                 "MaxConcurrency": 1}}
        code, message = error(lambda: west.create_endpoint_config(
            EndpointConfigName="tiny", ProductionVariants=[serverless], CrossRegionTrafficConfig=cap))
        assert code == "ValidationException" and "serverless" in message
    finally:
        server.stop()


OWNER = "444455556666"  # a 12-digit access key calls as that account


def test_resources_are_per_account_and_an_endpoint_policy_lets_another_accounts_router_in(server, sm):
    """Issue 28, item 4: an access key maps to an account; each account has its own resources;
    a router reaches another account's endpoint only as that endpoint's policy allows (Describe
    shows Unknown until it may describe it; the destination denies the call, and with no other
    destination it is ServiceUnavailableException, as the router's troubleshooting page says)."""
    owner = client(server.url, region="us-west-2", access_key=OWNER)
    deploy(owner, "shared")
    deploy(owner, "twin")
    deploy(client(server.url, region="us-west-2"), "twin")  # the same name in another account: its own
    shared = owner.describe_endpoint(EndpointName="shared")["EndpointArn"]
    assert shared == f"arn:aws:sagemaker:us-west-2:{OWNER}:endpoint/shared"
    assert "shared" not in {e["EndpointName"] for e in client(server.url, region="us-west-2").list_endpoints()[
        "Endpoints"]}
    assert {e["EndpointName"] for e in owner.list_endpoints()["Endpoints"]} == {"shared", "twin"}

    router = sm.create_inference_router(InferenceRouterName="borrow", RoutingTargets=[
        {"Name": "echo", "Destinations": [{"ResourceArn": shared}]}])["InferenceRouterArn"]
    assert settled(sm, "borrow")["RoutingTargets"][0]["Destinations"][0]["RoutingStatus"] == "Unknown"
    runtime = client(server.url, "sagemaker-inference-router-runtime")
    code, message = error(lambda: routed(runtime, "borrow"))
    assert code == "ServiceUnavailableException" and f"Destination {shared} denied the request" in message

    def policy(router_arn: str, principal: str = "arn:aws:iam::123456789012:root") -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": [
            {"Sid": "InvokeThroughRouter", "Effect": "Allow", "Principal": {"AWS": principal},
             "Action": "sagemaker:InvokeEndpoint", "Resource": shared,
             "Condition": {"ArnEquals": {"sagemaker:SourceInferenceRouterArn": router_arn}}},
            {"Sid": "Describe", "Effect": "Allow", "Principal": {"AWS": principal},
             "Action": "sagemaker:DescribeEndpoint", "Resource": shared}]})

    assert owner.put_endpoint_policy(EndpointName="shared", ResourcePolicy=policy(router))["EndpointArn"] == shared
    assert owner.get_endpoint_policy(EndpointName="shared")["ResourcePolicy"] == policy(router)
    assert sm.describe_inference_router(InferenceRouterName="borrow")["RoutingTargets"][0]["Destinations"][0][
        "RoutingStatus"] == "Routable"
    assert routed(runtime, "borrow") == {"body": b'{"x": 1}', "arn": shared, "reason": "only-healthy",
                                         "variant": "AllTraffic"}

    owner.put_endpoint_policy(EndpointName="shared", ResourcePolicy=policy(router.replace("borrow", "other")))
    assert error(lambda: routed(runtime, "borrow"))[0] == "ServiceUnavailableException"  # another router's grant
    owner.delete_endpoint_policy(EndpointName="shared")
    assert error(lambda: routed(runtime, "borrow"))[0] == "ServiceUnavailableException"
    assert error(lambda: owner.get_endpoint_policy(EndpointName="shared"))[0] == "ValidationException"
    code, message = error(lambda: owner.put_endpoint_policy(EndpointName="shared",
                                                            ResourcePolicy=policy(router, principal="*")))
    assert code == "ValidationException" and "wildcard principal" in message
    assert error(lambda: owner.put_endpoint_policy(EndpointName="missing", ResourcePolicy=policy(router)))[0] == \
        "ResourceNotFound"
    assert error(lambda: sm.get_endpoint_policy(EndpointName="shared"))[0] == "ResourceNotFound"  # not this account's


def test_a_component_with_no_copies_is_used_last_and_alone_is_model_not_ready(server, sm):
    """An inference component at zero copies cannot take a call: another destination serves it,
    and with none other the router answers ModelNotReadyException (429)."""
    from tests.integration.test_inference_components import ROLE, component, ic_endpoint

    sm.create_model(ModelName="ic-echo", PrimaryContainer={"Image": "sagemaker-emu/echo"}, ExecutionRoleArn=ROLE)
    ic_endpoint(sm, "hosts")
    empty = component(sm, "empty", "hosts", "ic-echo", copies=1)["InferenceComponentArn"]
    sm.update_inference_component_runtime_config(InferenceComponentName="empty", DesiredRuntimeConfig={"CopyCount": 0})
    eventually(lambda: sm.describe_inference_component(InferenceComponentName="empty")["RuntimeConfig"][
        "CurrentCopyCount"] == 0, timeout=60)
    deploy(sm, "whole")
    whole = sm.describe_endpoint(EndpointName="whole")["EndpointArn"]
    sm.create_inference_router(InferenceRouterName="copies", RoutingTargets=[
        {"Name": "both", "Destinations": [{"ResourceArn": empty}, {"ResourceArn": whole}]},
        {"Name": "alone", "Destinations": [{"ResourceArn": empty}]}])
    settled(sm, "copies")
    runtime = client(server.url, "sagemaker-inference-router-runtime")
    assert routed(runtime, "copies", "both")["arn"] == whole
    code, message = error(lambda: routed(runtime, "copies", "alone"))
    assert code == "ModelNotReadyException" and empty in message
