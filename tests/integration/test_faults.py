"""Fault and latency injection through /_emu/faults, seen from boto3."""

import json

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import client, deploy, variant
from tests.integration.test_fleet import eventually, instances


def add_fault(server, **rule):
    status, _, body = server.post("/_emu/faults", json.dumps(rule).encode(), {"Content-Type": "application/json"})
    return status, json.loads(body)


def test_throttling_is_retried_by_boto3_like_the_real_thing(server, sm):
    deploy(sm, "ep1")
    status, fault = add_fault(server, kind="throttle", endpoint="ep1", times=2)
    assert status == 201 and fault["id"].startswith("fault-")
    patient = client(server.url, "sagemaker-runtime", retries={"total_max_attempts": 3, "mode": "standard"})
    resp = patient.invoke_endpoint(EndpointName="ep1", Body=b"x")
    assert resp["Body"].read() == b"x" and resp["ResponseMetadata"]["RetryAttempts"] == 2
    add_fault(server, kind="throttle", endpoint="ep1", times=1)
    impatient = client(server.url, "sagemaker-runtime")
    with pytest.raises(ClientError) as info:
        impatient.invoke_endpoint(EndpointName="ep1", Body=b"x")
    assert info.value.response["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}


def test_model_error_with_a_chosen_status_on_one_variant(server, sm, rt):
    deploy(sm, "ep1", variants=[variant("a", model="m1"), variant("b", model="m1")])
    add_fault(server, kind="model_error", endpoint="ep1", variant="b", status=503, message="overloaded")
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint(EndpointName="ep1", Body=b"x", TargetVariant="b")
    assert info.value.response["OriginalStatusCode"] == 503 and info.value.response["OriginalMessage"] == "overloaded"
    assert rt.invoke_endpoint(EndpointName="ep1", Body=b"x", TargetVariant="a")["Body"].read() == b"x"


def test_probability_is_seeded_and_rules_can_be_listed_and_removed(server, sm, rt):
    deploy(sm, "ep1")
    _, fault = add_fault(server, kind="model_error", endpoint="ep1", probability=0.5)
    outcomes = []
    for _ in range(40):
        try:
            rt.invoke_endpoint(EndpointName="ep1", Body=b"x")
            outcomes.append("ok")
        except ClientError:
            outcomes.append("error")
    assert 8 <= outcomes.count("error") <= 32  # P(outside) < 1e-4 at p = 0.5
    status, _, body = server.post("/_emu/faults", method="GET")
    assert [f["id"] for f in json.loads(body)["faults"]] == [fault["id"]]
    status, _, _ = server.post(f"/_emu/faults/{fault['id']}", method="DELETE")
    assert status == 200
    assert all(rt.invoke_endpoint(EndpointName="ep1", Body=b"x") for _ in range(10))


def test_a_killed_instance_comes_back(server, sm, rt):
    deploy(sm, "ep1", variants=[variant(InitialInstanceCount=1)])
    (before,) = instances(server, "ep1")
    add_fault(server, kind="kill_instance", endpoint="ep1", times=1)
    with pytest.raises(ClientError):  # the call that fired the rule finds its instance dead
        rt.invoke_endpoint(EndpointName="ep1", Body=b"x")
    back = eventually(lambda: next((i for i in instances(server, "ep1")
                                    if i["restarts"] == 1 and i["health"] == "Healthy"), None))
    assert back["pid"] != before["pid"]
    assert rt.invoke_endpoint(EndpointName="ep1", Body=b"x")["Body"].read() == b"x"


def test_bad_rules_are_refused(server):
    status, body = add_fault(server, kind="explode", endpoint="ep1")
    assert status == 400 and "kind must be one of" in body["message"]
    status, body = add_fault(server, kind="latency", endpoint="ep1")
    assert status == 400 and "latency_ms" in body["message"]
