"""InvokeEndpointWithResponseStream through boto3, for every kind of container."""

import json

import pytest
from botocore.exceptions import ClientError, EventStreamError

from sagemaker_emu.testing import client, deploy, variant
from tests.integration.test_containers import FIXTURES, mapped_server  # noqa: F401
from tests.integration.test_fleet import eventually

LLM = {"Image": "sagemaker-emu/llm-sim", "Environment": {
    "LLM_SIM_PREFILL_BASE_MS": "0", "LLM_SIM_PREFILL_MS_PER_TOKEN": "0", "LLM_SIM_DECODE_MS_PER_TOKEN": "10"}}


def parts(response) -> list[bytes]:
    return [event["PayloadPart"]["Bytes"] for event in response["Body"]]


def instance_of(server, name):
    (inst,) = [i for v in server.endpoint_view(name)["variants"] for i in v["instances"]]
    return inst


@pytest.fixture
def llm(sm):
    sm.create_model(ModelName="llm-model", PrimaryContainer=LLM)
    sm.create_endpoint_config(EndpointConfigName="llm-config", ProductionVariants=[variant(model="llm-model")])
    sm.create_endpoint(EndpointName="llm", EndpointConfigName="llm-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="llm", WaiterConfig={"MaxAttempts": 1})
    return "llm"


def test_llm_sim_streams_tgi_events_token_by_token(server, rt, llm):
    resp = rt.invoke_endpoint_with_response_stream(
        EndpointName=llm, ContentType="application/json", CustomAttributes="c=1",
        Body=json.dumps({"inputs": "Tell me", "parameters": {"max_new_tokens": 12}, "stream": True}))
    assert resp["ContentType"] == "text/event-stream"
    assert resp["InvokedProductionVariant"] == "AllTraffic"
    events = parts(resp)
    assert len(events) == 12 and all(e.startswith(b"data:") and e.endswith(b"\n\n") for e in events)
    tokens = [json.loads(e[len(b"data:"):]) for e in events]
    assert [t["index"] for t in tokens] == list(range(1, 13))
    assert tokens[-1]["generated_text"] == "".join(t["token"]["text"] for t in tokens)
    assert instance_of(server, llm)["in_flight"] == 0


def test_plain_text_mode_when_the_caller_accepts_text(rt, llm):
    resp = rt.invoke_endpoint_with_response_stream(
        EndpointName=llm, Accept="text/plain", Body=json.dumps({"inputs": "x", "parameters": {"max_new_tokens": 5},
                                                                "stream": True}))
    chunks = parts(resp)
    assert resp["ContentType"] == "text/plain" and len(chunks) == 5
    assert len(b"".join(chunks).split()) == 5


def test_a_container_that_does_not_stream_sends_one_part(sm, rt):
    deploy(sm, "ep1")
    resp = rt.invoke_endpoint_with_response_stream(EndpointName="ep1", Body=b"\x00\x01binary", ContentType="a/b")
    assert parts(resp) == [b"\x00\x01binary"] and resp["ContentType"] == "a/b"


def test_the_first_part_arrives_while_the_model_is_still_generating_then_the_caller_leaves(server, rt, llm):
    resp = rt.invoke_endpoint_with_response_stream(
        EndpointName=llm, Body=json.dumps({"inputs": "x", "parameters": {"max_new_tokens": 1000}, "stream": True}))
    stream = iter(resp["Body"])
    first = next(stream)["PayloadPart"]["Bytes"]  # 1000 tokens take 10 s; the first comes at once
    assert first.startswith(b"data:")
    assert instance_of(server, llm)["in_flight"] == 1  # still generating: this was not buffered
    resp["Body"].close()  # the caller hangs up mid-stream
    eventually(lambda: instance_of(server, llm)["in_flight"] == 0)
    inst = instance_of(server, llm)
    status, _, log = eventually(lambda: (lambda r: r if b"generation stopped" in r[2] else None)(
        server.post(f"/_emu/endpoints/{llm}/instances/{inst['id']}/logs", method="GET")))
    assert b"of 1000 tokens" in log


def test_errors_before_the_first_byte_are_ordinary_errors(server, rt, llm):
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint_with_response_stream(EndpointName="nope", Body=b"x")
    assert info.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint_with_response_stream(EndpointName=llm, Body=b"not json")
    assert info.value.response["Error"]["Code"] == "ModelError"
    assert info.value.response["OriginalStatusCode"] == 422
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint_with_response_stream(EndpointName=llm, Body=b"{}", SessionId="NEW_SESSION")
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert instance_of(server, llm)["in_flight"] == 0


def test_inference_py_generators_stream_and_fail_mid_stream(server, sm, rt):
    deploy(sm, "gen", container={"Image": "my/framework:1", "ModelDataUrl": (FIXTURES / "streaming_model").as_uri()})
    resp = rt.invoke_endpoint_with_response_stream(EndpointName="gen", Body=b'{"parts": 4}', ContentType="application/json")
    assert b"".join(parts(resp)) == b"part-0;part-1;part-2;part-3;"
    resp = rt.invoke_endpoint_with_response_stream(EndpointName="gen", Body=b'{"parts": 4, "fail_at": 2}',
                                                   ContentType="application/json")
    received = []
    with pytest.raises(EventStreamError) as info:
        for event in resp["Body"]:
            received.append(event["PayloadPart"]["Bytes"])
    assert b"".join(received) == b"part-0;part-1;"
    assert info.value.response["Error"]["Code"] == "ModelStreamError"
    assert "closed before the response was complete" in info.value.response["Error"]["Message"]
    (inst,) = [i for v in server.endpoint_view("gen")["variants"] for i in v["instances"]]
    assert inst["in_flight"] == 0 and inst["errors"] == 1


def test_image_map_commands_stream_by_chunked_http(mapped_server):  # noqa: F811
    sm, rt = client(mapped_server.url), client(mapped_server.url, "sagemaker-runtime")
    deploy(sm, "custom", container={"Image": "acme/custom:1"})
    resp = rt.invoke_endpoint_with_response_stream(EndpointName="custom", Body=b"stream:one two three")
    assert parts(resp) == [b"one", b"two", b"three"]


def test_a_model_too_slow_between_parts_gets_model_invocation_time_exceeded():
    from sagemaker_emu.testing import EmulatorProcess

    srv = EmulatorProcess("--model-timeout", "0.5")
    try:
        sm, rt = client(srv.url), client(srv.url, "sagemaker-runtime")
        sm.create_model(ModelName="slow", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": {
            "LLM_SIM_PREFILL_BASE_MS": "0", "LLM_SIM_PREFILL_MS_PER_TOKEN": "0", "LLM_SIM_DECODE_MS_PER_TOKEN": "2000"}})
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant(model="slow")])
        sm.create_endpoint(EndpointName="slow", EndpointConfigName="c")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="slow", WaiterConfig={"MaxAttempts": 1})
        resp = rt.invoke_endpoint_with_response_stream(
            EndpointName="slow", Body=json.dumps({"inputs": "x", "parameters": {"max_new_tokens": 3}, "stream": True}))
        with pytest.raises(EventStreamError) as info:
            parts(resp)
        assert info.value.response["Error"]["Code"] == "ModelStreamError"
        assert "did not send the next part of its response within the timeout (0.5 s)" in \
            info.value.response["Error"]["Message"]
        status, _, raw = srv.post("/_emu/metrics", method="GET")
        assert b'code="ModelStreamError"} 1' in raw
        eventually(lambda: instance_of(srv, "slow")["in_flight"] == 0)
    finally:
        srv.stop()
