"""Issue 11 items 8 and 9: numbers that broke endpoints and input that gave 500s.

Each case is a raw request (what a careless or hostile caller can send past botocore) and
must get SageMaker's error shape, never a 5xx, and leave the server serving.
"""

from __future__ import annotations

import base64
import json

import pytest

from sagemaker_emu.testing import deploy


def config_body(weight: str, name: str = "cfg") -> bytes:
    return (b'{"EndpointConfigName": "%s", "ProductionVariants": [{"VariantName": "v", "ModelName": "m", '
            b'"InstanceType": "ml.m5.large", "InitialInstanceCount": 1, "InitialVariantWeight": %s}]}'
            % (name.encode(), weight.encode()))


@pytest.mark.parametrize("weight,message", [
    ("1e400", "Numeric value (Infinity) out of range of float"),
    ("1e308", "out of range of float"),
    ("1" + "0" * 400, "out of range of float"),
    ("NaN", "Non-standard token 'NaN'"),
    ("Infinity", "Non-standard token 'Infinity'"),
    ("-Infinity", "Non-standard token '-Infinity'"),
])
def test_weights_that_are_not_finite_floats_are_refused(server, sm, weight, message):
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    status, body = server.call("CreateEndpointConfig", config_body(weight))
    assert status == 400 and body["__type"] == "SerializationException" and message in body["Message"]
    assert server.call("DescribeEndpointConfig", {"EndpointConfigName": "cfg"})[0] == 400  # nothing stored


def test_large_finite_weights_route(server, sm, rt):
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    status, _ = server.call("CreateEndpointConfig", config_body("3e38"))
    assert status == 200
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="cfg")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep", WaiterConfig={"Delay": 1})
    assert rt.invoke_endpoint(EndpointName="ep", Body=b"x")["Body"].read() == b"x"


def test_desired_weight_out_of_range_is_refused(server, sm, rt):
    deploy(sm, "ep1")
    status, body = server.call("UpdateEndpointWeightsAndCapacities", (
        b'{"EndpointName": "ep1", "DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic", "DesiredWeight": 1e400}]}'))
    assert status == 400 and body["__type"] == "SerializationException"
    assert rt.invoke_endpoint(EndpointName="ep1", Body=b"x")["Body"].read() == b"x"


@pytest.mark.parametrize("operation,body,path", [
    ("CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": [None]}, "productionVariants.1.member"),
    ("CreateModel", {"ModelName": "m", "PrimaryContainer": {"Image": "i"}, "Tags": [{"Key": "a", "Value": "b"}, None]},
     "tags.2.member"),
])
def test_a_null_inside_a_list_is_a_validation_error(server, operation, body, path):
    status, answer = server.call(operation, body)
    assert status == 400 and answer["__type"] == "ValidationException"
    assert f"Value null at '{path}' failed to satisfy constraint: Member must not be null" in answer["Message"]


@pytest.mark.parametrize("depth", [70, 490, 975, 5000])
def test_deep_nesting_is_refused(server, depth):
    nested = '{"a": ' * depth + "1" + "}" * depth
    status, answer = server.call("CreateModel", f'{{"ModelName": "m", "PrimaryContainer": {{"Image": "i", "X": {nested}}}}}'.encode())
    assert status == 400 and answer["__type"] == "SerializationException"


def test_a_deeply_nested_next_token_is_not_valid(server):
    token = base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).decode()  # within the 8,192 limit
    status, answer = server.call("ListEndpoints", {"NextToken": token})
    assert status == 400 and answer["Message"] == "The provided pagination token is not valid."


def test_emu_api_input_is_checked(server, sm):
    deploy(sm, "ep1")
    view = server.endpoint_view("ep1")
    instance = view["variants"][0]["instances"][0]["id"]
    for lines in ("-1", "0", "99999999"):
        status, _, body = server.post(f"/_emu/endpoints/ep1/instances/{instance}/logs?lines={lines}", method="GET")
        assert status == 400 and "lines" in json.loads(body)["message"]
    for rule in ({"latency_ms": "inf"}, {"latency_ms": 1e400}, {"latency_ms": "100"}, {"probability": "NaN"},
                 {"times": 1.5}, {"status": 200}, {"variant": 3}):
        raw = json.dumps({"kind": "latency", "endpoint": "ep1", "latency_ms": 10, **rule}).replace("1e+400", "1e400")
        status, _, body = server.post("/_emu/faults", raw.encode(), {"Content-Type": "application/json"})
        assert status == 400, rule
    status, _, body = server.post("/_emu/no-such-thing", method="GET")
    assert status == 404 and "message" in json.loads(body)


def test_a_double_encoded_endpoint_name_is_not_decoded_twice(server, sm):
    deploy(sm, "rt-echo")
    status, headers, body = server.post("/endpoints/rt-ech%256f/invocations", b"x")
    assert status == 400 and headers["x-amzn-ErrorType"] == "ValidationError"
    assert "rt-ech%6f" in json.loads(body)["Message"]
