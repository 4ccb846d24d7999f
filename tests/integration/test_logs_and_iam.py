"""CloudWatch Logs from the real worker logs, and the IAM and STS answers a deployment tool
needs (issue 16), on the one URL."""

import time

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import client, deploy
from tests.integration.test_inference_components import component, ic_endpoint

PYTORCH = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310"
TALKATIVE = '''
import sys

def model_fn(model_dir):
    print("model loaded", flush=True)
    return None

def transform_fn(model, body, content_type, accept):
    print(f"handled {body.decode()}", flush=True)
    print("WARN slow request", file=sys.stderr, flush=True)
    return body, accept
'''


def eventually(fetch, what, seconds=20.0):
    deadline = time.monotonic() + seconds
    while True:
        value = fetch()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def logs(server):
    return client(server.url, "logs")


def test_worker_output_is_in_the_endpoints_log_group(server, sm, rt, logs, tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text(TALKATIVE)
    deploy(sm, "talk", container={"Image": PYTORCH, "ModelDataUrl": tmp_path.as_uri()}, InitialInstanceCount=2)
    group = "/aws/sagemaker/Endpoints/talk"
    assert [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/")["logGroups"]] \
        == [group]
    for word in ("alpha", "beta", "gamma"):
        rt.invoke_endpoint(EndpointName="talk", Body=word.encode(), ContentType="text/plain")
    found = eventually(lambda: logs.filter_log_events(logGroupName=group, filterPattern="handled")["events"],
                       "the handled lines")
    assert sorted(e["message"] for e in found if "handled" in e["message"]) == [
        "handled alpha", "handled beta", "handled gamma"]
    either = logs.filter_log_events(logGroupName=group, filterPattern="?alpha ?gamma")["events"]
    assert sorted(e["message"] for e in either) == ["handled alpha", "handled gamma"]
    assert logs.filter_log_events(logGroupName=group, filterPattern="handled -beta -gamma")["events"][0]["message"] \
        == "handled alpha"
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=group)["logStreams"]]
    assert streams == ["AllTraffic/AllTraffic-1", "AllTraffic/AllTraffic-2"]
    events = logs.get_log_events(logGroupName=group, logStreamName=streams[0], startFromHead=True)
    messages = [e["message"] for e in events["events"]]
    assert "model loaded" in messages and all(e["timestamp"] > 0 for e in events["events"])
    status, _, body = server.post("/_emu/endpoints/talk/instances/AllTraffic-1/logs?lines=10000", method="GET")
    assert status == 200 and body.decode().splitlines() == messages  # the same store answers /_emu
    again = logs.get_log_events(logGroupName=group, logStreamName=streams[0], nextToken=events["nextForwardToken"])
    assert again["events"] == [] and again["nextForwardToken"] == events["nextForwardToken"]  # the end: same token
    with pytest.raises(ClientError) as info:
        logs.describe_log_streams(logGroupName="/aws/sagemaker/Endpoints/none")
    assert info.value.response["Error"] == {"Code": "ResourceNotFoundException",
                                            "Message": "The specified log group does not exist."}
    logs.delete_log_group(logGroupName=group)  # the events go; the running endpoint's group stays
    assert logs.filter_log_events(logGroupName=group, filterPattern="handled")["events"] == []
    rt.invoke_endpoint(EndpointName="talk", Body=b"delta", ContentType="text/plain")
    found = eventually(lambda: logs.filter_log_events(logGroupName=group, filterPattern="handled")["events"],
                       "a line written after the deletion")
    assert [e["message"] for e in found] == ["handled delta"]
    with pytest.raises(ClientError) as info:
        logs.delete_log_group(logGroupName="/aws/sagemaker/Endpoints/none")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_groups_follow_endpoints_and_components(sm, logs):
    sm.create_model(ModelName="echo", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    ic_endpoint(sm, "icl")
    component(sm, "ic-logged", "icl", "echo", copies=1)
    names = lambda: {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}  # noqa: E731
    eventually(lambda: "/aws/sagemaker/InferenceComponents/ic-logged" in names(), "the component's group")
    streams = eventually(lambda: logs.describe_log_streams(
        logGroupName="/aws/sagemaker/InferenceComponents/ic-logged")["logStreams"], "the copy's stream")
    assert [s["logStreamName"] for s in streams] == ["ic-logged-1"]
    sm.delete_inference_component(InferenceComponentName="ic-logged")
    eventually(lambda: "/aws/sagemaker/InferenceComponents/ic-logged" not in names(), "the component's group to go")
    sm.delete_endpoint(EndpointName="icl")
    eventually(lambda: names() == set(), "the endpoint's group to go")


def test_iam_and_sts_answer_as_for_a_user_who_may_deploy(server):
    iam, sts = client(server.url, "iam"), client(server.url, "sts")
    assert sts.get_caller_identity()["Account"] == "123456789012"
    role = iam.get_role(RoleName="AmazonSageMaker-ExecutionRole")["Role"]
    assert role["Arn"] == "arn:aws:iam::123456789012:role/AmazonSageMaker-ExecutionRole"
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    results = iam.simulate_principal_policy(PolicySourceArn=role["Arn"], ActionNames=["s3:GetObject",
                                                                                      "sagemaker:CreateModel"])
    assert {(r["EvalActionName"], r["EvalDecision"]) for r in results["EvaluationResults"]} == {
        ("s3:GetObject", "allowed"), ("sagemaker:CreateModel", "allowed")}
    with pytest.raises(ClientError):  # anything else is moto's IAM, unchanged
        iam.get_user(UserName="nobody")
