"""Issue 26: every way a request reaches an instance passes through one dispatch core, which
records each call exactly once, whatever became of it. `sagemaker_emu_calls_total` counts
those records; each case below is one call, and must move it by exactly one."""

import json
import re

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from sagemaker_emu.testing import EmulatorProcess, client, deploy
from tests.integration.test_fleet import eventually

LLM = {"Image": "sagemaker-emu/llm-sim", "Environment": {
    "LLM_SIM_PREFILL_BASE_MS": "0", "LLM_SIM_PREFILL_MS_PER_TOKEN": "0", "LLM_SIM_DECODE_MS_PER_TOKEN": "10"}}


@pytest.fixture(scope="module")
def core():
    srv = EmulatorProcess()
    sm = client(srv.url)
    deploy(sm, "echo")
    deploy(sm, "llm", container=LLM)
    sm.create_model(ModelName="sls-m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    sm.create_endpoint_config(EndpointConfigName="sls-c", ProductionVariants=[{
        "VariantName": "v", "ModelName": "sls-m", "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}}])
    sm.create_endpoint(EndpointName="sls", EndpointConfigName="sls-c")
    s3 = client(srv.url, "s3")
    s3.create_bucket(Bucket="core-io")
    s3.put_object(Bucket="core-io", Key="in.json", Body=b'{"x": 1}')
    sm.create_endpoint_config(EndpointConfigName="async-c", AsyncInferenceConfig={
        "OutputConfig": {"S3OutputPath": "s3://core-io/out"}}, ProductionVariants=[{
            "VariantName": "v", "ModelName": "echo-model", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="async", EndpointConfigName="async-c")
    for name in ("sls", "async"):
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    yield srv
    srv.stop()


def calls(srv, endpoint: str) -> int:
    _, _, text = srv.post("/_emu/metrics", method="GET")
    match = re.search(rf'sagemaker_emu_calls_total{{endpoint="{re.escape(endpoint)}"}} (\d+)', text.decode())
    return int(match.group(1)) if match else 0


def one_call(srv, endpoint: str, call, expect_code: str | None = None) -> None:
    before = calls(srv, endpoint)
    if expect_code is None:
        call()
    else:
        with pytest.raises(ClientError) as failed:
            call()
        assert failed.value.response["Error"]["Code"] == expect_code
    eventually(lambda: calls(srv, endpoint) > before)
    assert calls(srv, endpoint) == before + 1


def rt(srv, **config):
    return client(srv.url, "sagemaker-runtime", **config)


def test_an_answered_invoke_is_recorded_once(core):
    one_call(core, "echo", lambda: rt(core).invoke_endpoint(EndpointName="echo", Body=b"{}"))


def test_a_model_error_is_recorded_once(core):
    one_call(core, "llm", lambda: rt(core).invoke_endpoint(EndpointName="llm", Body=b"not json"), "ModelError")


def test_a_refused_call_is_recorded_once(core):
    one_call(core, "echo", lambda: rt(core).invoke_endpoint(EndpointName="echo", Body=b"{}", TargetVariant="nope"),
             "ValidationError")
    one_call(core, "", lambda: rt(core).invoke_endpoint(EndpointName="no-such", Body=b"{}"), "ValidationError")


def test_an_injected_throttle_is_recorded_once(core):
    core.post("/_emu/faults", json.dumps({"kind": "throttle", "endpoint": "echo", "times": 1}).encode(),
              {"Content-Type": "application/json"})
    one_call(core, "echo", lambda: rt(core, retries={"total_max_attempts": 1}).invoke_endpoint(
        EndpointName="echo", Body=b"{}"), "ThrottlingException")


def test_a_stream_is_recorded_once_read_whole_or_left(core):
    body = json.dumps({"inputs": "hi", "parameters": {"max_new_tokens": 5}, "stream": True}).encode()

    def whole():
        events = rt(core).invoke_endpoint_with_response_stream(EndpointName="llm", Body=body)["Body"]
        assert any("PayloadPart" in e for e in events)

    def left():
        events = rt(core).invoke_endpoint_with_response_stream(EndpointName="llm", Body=body)["Body"]
        next(iter(events))
        events.close()  # the caller leaves mid-stream

    one_call(core, "llm", whole)
    one_call(core, "llm", left)


def test_a_caller_that_hangs_up_is_recorded_once(core):
    body = json.dumps({"inputs": "hi", "parameters": {"max_new_tokens": 200}}).encode()  # about 2 s
    impatient = rt(core, read_timeout=0.3, retries={"total_max_attempts": 1})

    def call():
        with pytest.raises(ReadTimeoutError):
            impatient.invoke_endpoint(EndpointName="llm", Body=body)

    one_call(core, "llm", call)


def test_a_serverless_call_with_its_cold_start_is_recorded_once(core):
    one_call(core, "sls", lambda: rt(core).invoke_endpoint(EndpointName="sls", Body=b"{}"))


def test_an_async_call_is_recorded_once(core):
    s3 = client(core.url, "s3")

    def call():
        answer = rt(core).invoke_endpoint_async(EndpointName="async", InputLocation="s3://core-io/in.json")
        key = answer["OutputLocation"].split("/", 3)[3]
        eventually(lambda: "Contents" in s3.list_objects_v2(Bucket="core-io", Prefix=key))

    one_call(core, "async", call)
