"""InvokeEndpoint through boto3 against real worker processes."""

import json

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import deploy, variant

ACCOUNT = "123456789012"


def error(info):
    return info.value.response["Error"]


def test_echo_round_trip_with_headers(sm, rt):
    deploy(sm, "ep1")
    resp = rt.invoke_endpoint(EndpointName="ep1", Body=b'{"x": [1, 2]}', ContentType="application/json",
                              Accept="application/json", CustomAttributes="trace=abc", InferenceId="req-1")
    assert resp["Body"].read() == b'{"x": [1, 2]}'
    assert resp["ContentType"] == "application/json"
    assert resp["InvokedProductionVariant"] == "AllTraffic"
    assert resp["CustomAttributes"] == "trace=abc"
    assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def test_binary_bodies_pass_untouched(sm, rt):
    deploy(sm, "ep1")
    payload = bytes(range(256)) * 100
    resp = rt.invoke_endpoint(EndpointName="ep1", Body=payload, ContentType="application/octet-stream")
    assert resp["Body"].read() == payload


def test_unknown_endpoint_and_wrong_case(sm, rt):
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint(EndpointName="nope", Body=b"x")
    assert error(info) == {"Code": "ValidationError", "Message": f"Endpoint nope of account {ACCOUNT} not found."}
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    deploy(sm, "Case-Sensitive")
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint(EndpointName="case-sensitive", Body=b"x")
    assert error(info)["Message"] == f"Endpoint case-sensitive of account {ACCOUNT} not found."


def test_endpoint_not_in_service(sm, rt):
    deploy(sm, "ep1", environment={"SAGEMAKER_EMU_STARTUP_DELAY": "2"}, wait=False)
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint(EndpointName="ep1", Body=b"x")
    assert error(info) == {"Code": "ValidationError",
                           "Message": f"Endpoint ep1 of account {ACCOUNT} is not in service (status: Creating)."}


def test_target_model_and_inference_component_are_refused(sm, rt):
    deploy(sm, "ep1")
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint(EndpointName="ep1", Body=b"x", TargetModel="model.tar.gz")
    assert error(info)["Message"] == "Endpoint ep1 is not a multi-model endpoint and does not support target model header."
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint(EndpointName="ep1", Body=b"x", InferenceComponentName="ic1")
    assert error(info)["Code"] == "ValidationError"


def test_header_validation(sm, rt):
    deploy(sm, "ep1")
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint(EndpointName="ep1", Body=b"x", TargetVariant="bad_variant!")
    assert error(info) == {"Code": "ValidationError", "Message": (
        "1 validation error detected: Value 'bad_variant!' at 'targetVariant' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*")}
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint(EndpointName="ep1", Body=b"x", CustomAttributes="a" * 1025)
    assert "at 'customAttributes' failed to satisfy constraint: Member must have length less than or equal to 1024" in error(info)["Message"]


def test_body_over_6_mib(sm, rt):
    deploy(sm, "ep1")
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint(EndpointName="ep1", Body=b"x" * (6 * 1024 * 1024 + 1))
    assert error(info)["Code"] == "ValidationError"
    assert "Member must have length less than or equal to 6291456" in error(info)["Message"]
    assert rt.invoke_endpoint(EndpointName="ep1", Body=b"x" * (6 * 1024 * 1024))["Body"].read() == b"x" * (6 * 1024 * 1024)


def test_target_variant_and_weights(server, sm, rt):
    deploy(sm, "ep1", variants=[variant("blue", model="m1", InitialVariantWeight=1.0),
                                variant("green", model="m1", InitialVariantWeight=0.0),
                                variant("red", model="m1", InitialVariantWeight=1.0)])
    seen = {rt.invoke_endpoint(EndpointName="ep1", Body=b"x")["InvokedProductionVariant"] for _ in range(60)}
    assert seen == {"blue", "red"}  # weight 0 gets nothing; P(one of two unseen in 60) ~ 2^-59
    resp = rt.invoke_endpoint(EndpointName="ep1", Body=b"x", TargetVariant="green")
    assert resp["InvokedProductionVariant"] == "green"  # the header overrides the weights
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint(EndpointName="ep1", Body=b"x", TargetVariant="purple")
    assert error(info)["Message"] == "Endpoint ep1 does not have a production variant named purple."
    served = {v["name"]: sum(i["served"] for i in v["instances"]) for v in server.endpoint_view("ep1")["variants"]}
    assert served["green"] == 1 and served["blue"] + served["red"] == 60


def test_llm_sim_generates_requested_tokens(sm, rt):
    sm.create_model(ModelName="llm-model", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": {
        "LLM_SIM_DECODE_MS_PER_TOKEN": "1", "LLM_SIM_PREFILL_BASE_MS": "1"}})
    sm.create_endpoint_config(EndpointConfigName="llm-config", ProductionVariants=[variant(model="llm-model")])
    sm.create_endpoint(EndpointName="llm", EndpointConfigName="llm-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="llm")
    resp = rt.invoke_endpoint(EndpointName="llm", ContentType="application/json",
                              Body=json.dumps({"inputs": "Write a haiku", "parameters": {"max_new_tokens": 17}}))
    out = json.loads(resp["Body"].read())
    assert len(out) == 1 and len(out[0]["generated_text"].split()) == 17
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint(EndpointName="llm", Body=b'{"prompt": "wrong key"}')
    err = info.value.response
    assert err["Error"]["Code"] == "ModelError" and err["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert err["OriginalStatusCode"] == 422
    assert "`inputs` must be a string" in err["OriginalMessage"]
    assert err["Error"]["Message"].startswith('Received client error (422) from primary with message "')
    assert err["LogStreamArn"] == f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/sagemaker/Endpoints/llm"


def test_async_invocation_of_a_real_time_endpoint_is_refused(sm, rt):
    deploy(sm, "ep1")
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint_async(EndpointName="ep1", InputLocation="s3://bucket/input.json")
    assert error(info)["Code"] == "ValidationError"
    assert error(info)["Message"] == (f"Endpoint ep1 of account {ACCOUNT} is not an asynchronous inference endpoint: "
                                      "its endpoint configuration has no AsyncInferenceConfig. Use InvokeEndpoint instead.")
