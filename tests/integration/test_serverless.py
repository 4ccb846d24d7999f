"""Serverless endpoints (issue 14): validated as AWS does, cold until called, throttled above
MaxConcurrency, scaled to zero after idling, kept warm by ProvisionedConcurrency."""

import datetime as dt
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import EmulatorProcess, client

IDLE_S = 1.0


@pytest.fixture(scope="module")
def serverless_server():
    with EmulatorProcess("--serverless-idle-seconds", str(IDLE_S)) as srv:
        yield srv


@pytest.fixture
def sls(serverless_server):
    serverless_server.reset()
    return serverless_server, client(serverless_server.url), client(serverless_server.url, "sagemaker-runtime")


def deploy_serverless(sm, name, max_concurrency=2, provisioned=None, latency_ms=0):
    config = {"MemorySizeInMB": 2048, "MaxConcurrency": max_concurrency}
    if provisioned is not None:
        config["ProvisionedConcurrency"] = provisioned
    sm.create_model(ModelName=f"{name}-m", PrimaryContainer={
        "Image": "sagemaker-emu/echo", "Environment": {"ECHO_LATENCY_MS": str(latency_ms)}})
    sm.create_endpoint_config(EndpointConfigName=f"{name}-c", ProductionVariants=[
        {"VariantName": "v", "ModelName": f"{name}-m", "ServerlessConfig": config}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def instances(server, name):
    return server.endpoint_view(name)["variants"][0]["instances"]


def cold_starts(server, name) -> int:
    _, _, text = server.post("/_emu/metrics", method="GET")
    match = re.search(rf'sagemaker_emu_model_setup_seconds_count{{endpoint="{name}",variant="v"}} (\d+)', text.decode())
    return int(match.group(1)) if match else 0


def wait_for(predicate, what, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_cold_until_called_then_scaled_to_zero_after_idling(sls):
    server, sm, rt = sls
    deploy_serverless(sm, "cold")
    assert instances(server, "cold") == [] and cold_starts(server, "cold") == 0
    assert rt.invoke_endpoint(EndpointName="cold", Body=b"first")["Body"].read() == b"first"
    assert cold_starts(server, "cold") == 1 and len(instances(server, "cold")) == 1
    rt.invoke_endpoint(EndpointName="cold", Body=b"warm")
    assert cold_starts(server, "cold") == 1  # the second call found it warm
    wait_for(lambda: instances(server, "cold") == [], "the idle variant to scale to zero")
    assert rt.invoke_endpoint(EndpointName="cold", Body=b"again")["Body"].read() == b"again"
    assert cold_starts(server, "cold") == 2


def test_calls_beyond_max_concurrency_are_throttled(sls):
    server, sm, rt = sls
    deploy_serverless(sm, "busy", max_concurrency=2, latency_ms=3000, provisioned=1)

    def call(i):
        try:
            return rt.invoke_endpoint(EndpointName="busy", Body=f"{i}".encode())["Body"].read()
        except ClientError as exc:
            return exc.response["Error"]["Code"], exc.response["Error"]["Message"]

    with ThreadPoolExecutor(5) as pool:
        results = list(pool.map(call, range(5)))
    throttled = [r for r in results if isinstance(r, tuple)]
    assert len(throttled) == 3 and len(results) - len(throttled) == 2
    assert throttled[0] == ("ThrottlingException", "The endpoint busy is already serving its MaxConcurrency (2) of "
                                                    "concurrent requests. Retry later, or raise MaxConcurrency.")


def test_provisioned_concurrency_keeps_it_warm_and_updates_apply(sls):
    server, sm, rt = sls
    deploy_serverless(sm, "warm", max_concurrency=1, provisioned=1)
    assert len(instances(server, "warm")) == 1  # started with the endpoint: no cold start
    rt.invoke_endpoint(EndpointName="warm", Body=b"x")
    assert cold_starts(server, "warm") == 0
    sm.update_endpoint_weights_and_capacities(EndpointName="warm", DesiredWeightsAndCapacities=[
        {"VariantName": "v", "ServerlessUpdateConfig": {"MaxConcurrency": 3}}])
    sm.get_waiter("endpoint_in_service").wait(EndpointName="warm", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    variant = sm.describe_endpoint(EndpointName="warm")["ProductionVariants"][0]
    assert variant["CurrentServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 3, "ProvisionedConcurrency": 1}
    with ThreadPoolExecutor(3) as pool:  # three at once are now allowed
        assert len(list(pool.map(lambda i: rt.invoke_endpoint(EndpointName="warm", Body=b"y"), range(3)))) == 3
    assert len(instances(server, "warm")) == 1 and cold_starts(server, "warm") == 0
    cw = client(server.url, "cloudwatch")
    now = dt.datetime.now(dt.timezone.utc)
    window = {"StartTime": now - dt.timedelta(minutes=10), "EndTime": now + dt.timedelta(minutes=1), "Period": 3600}
    dims = [{"Name": "EndpointName", "Value": "warm"}, {"Name": "VariantName", "Value": "v"}]
    [calls] = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName="ServerlessProvisionedConcurrencyInvocations",
                                       Dimensions=dims, Statistics=["SampleCount"], **window)["Datapoints"]
    assert calls["SampleCount"] == 4.0  # every call to the variant, within or beyond what is provisioned
    [usage] = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName="ServerlessProvisionedConcurrencyUtilization",
                                       Dimensions=dims, Statistics=["Minimum", "Maximum"], **window)["Datapoints"]
    assert 0 < usage["Minimum"] <= usage["Maximum"] <= 1.0


def test_serverless_configs_are_validated(sls):
    _, sm, _ = sls
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    one = {"VariantName": "a", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}}
    cases = [
        ({"ProductionVariants": [one, {**one, "VariantName": "b"}]},
         "A serverless endpoint configuration must have exactly one production variant."),
        ({"ProductionVariants": [one], "DataCaptureConfig": {
            "InitialSamplingPercentage": 100, "DestinationS3Uri": "s3://b/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}]}},
         "DataCaptureConfig is not supported for serverless endpoints."),
        ({"ProductionVariants": [{**one, "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 201}}]}, None),
    ]
    for extra, message in cases:
        with pytest.raises(ClientError) as info:
            sm.create_endpoint_config(EndpointConfigName="bad", **extra)
        assert info.value.response["Error"]["Code"] == "ValidationException"
        if message:
            assert info.value.response["Error"]["Message"] == message
    sm.create_endpoint_config(EndpointConfigName="ok", ProductionVariants=[one])
    sm.create_endpoint(EndpointName="ok", EndpointConfigName="ok")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ok", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    with pytest.raises(ClientError) as info:
        sm.update_endpoint_weights_and_capacities(EndpointName="ok", DesiredWeightsAndCapacities=[
            {"VariantName": "a", "ServerlessUpdateConfig": {"ProvisionedConcurrency": 2}}])
    assert info.value.response["Error"]["Message"] == ('ProvisionedConcurrency must be less than or equal to '
                                                       'MaxConcurrency for variant "a".')
