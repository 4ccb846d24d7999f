"""The server itself: health, reset, logging, and hostile or malformed requests."""

import json

import pytest

from sagemaker_emu.testing import client


def test_health_answers_json(server):
    status, headers, body = server.post("/_emu/health", method="GET")
    assert status == 200
    data = json.loads(body)
    assert data["status"] == "ok" and data["version"]


def test_reset_deletes_everything(server, sm):
    sm.create_model(ModelName="m1", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    assert len(sm.list_models()["Models"]) == 1
    server.reset()
    assert sm.list_models()["Models"] == []


def test_one_log_line_per_call(server, sm):
    sm.create_model(ModelName="logged-model", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    with pytest.raises(sm.exceptions.ClientError):
        sm.describe_model(ModelName="missing-model")
    logs = server.logs()
    assert any("CreateModel logged-model 200" in line and line.rstrip().endswith("ms") for line in logs.splitlines())
    assert any("DescribeModel missing-model 400" in line for line in logs.splitlines())


def test_endpoint_url_with_a_path_prefix(server):
    sm = client(server.url + "/prefix")
    assert sm.list_models()["Models"] == []


@pytest.mark.parametrize(
    "headers,code,text",
    [
        ({}, "UnknownOperationException", "Unknown or missing X-Amz-Target header: (none)."),
        ({"X-Amz-Target": "SageMaker.NoSuchThing"}, "UnknownOperationException", "Unknown operation NoSuchThing."),
        ({"X-Amz-Target": "DynamoDB_20120810.ListTables"}, "UnknownOperationException", None),
    ],
)
def test_unknown_operations(server, headers, code, text):
    status, _, body = server.post("/", b"{}", headers)
    data = json.loads(body)
    assert status == 400 and data["__type"] == code
    if text:
        assert data["Message"] == text


def test_operation_we_do_not_emulate_names_itself(server, sm):
    with pytest.raises(sm.exceptions.ClientError) as info:
        sm.list_training_jobs()
    err = info.value.response
    assert err["Error"]["Code"] == "NotImplementedException"
    assert "ListTrainingJobs" in err["Error"]["Message"]
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 501


@pytest.mark.parametrize(
    "body,message",
    [
        (b"{not json", "The request body is not valid JSON."),
        (b"[1, 2]", "Start of list found where not expected."),
        (b'"text"', "Expected start of structure or map but found a scalar value."),
        (b"[" * 100_000, "The request body is not valid JSON."),
        (b'{"ModelName": "m", "PrimaryContainer": "image"}', "Expected start of structure or map but found STRING_VALUE."),
    ],
)
def test_malformed_bodies_are_serialization_errors(server, body, message):
    status, data = server.call("CreateModel", body)
    assert status == 400
    assert data == {"__type": "SerializationException", "Message": message}
    assert server.call("ListModels", {})[0] == 200  # still serving


def test_oversized_body_is_refused_and_server_keeps_serving(server):
    status, data = server.call("CreateModel", b'{"ModelName": "' + b"a" * (17 * 1024 * 1024) + b'"}')
    assert status == 413
    assert data["__type"] == "RequestEntityTooLargeException"
    status, data = server.call("ListModels", {})
    assert status == 200 and data == {"Models": []}


def test_unknown_members_are_ignored_and_not_stored(server, sm):
    status, _ = server.call("CreateModel", {"ModelName": "m", "PrimaryContainer": {"Image": "x", "Bogus": 1},
                                            "AlsoBogus": True})
    assert status == 200
    model = sm.describe_model(ModelName="m")
    assert "Bogus" not in model["PrimaryContainer"] and "AlsoBogus" not in model


def test_null_members_count_as_absent(server):
    status, data = server.call("CreateModel", {"ModelName": None})
    assert status == 400
    assert data["Message"] == ("1 validation error detected: Value null at 'modelName' failed to satisfy "
                               "constraint: Member must not be null")


def test_request_id_header_matches_response_metadata(sm):
    resp = sm.list_models()
    assert resp["ResponseMetadata"]["RequestId"] == resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def test_reads_the_sdk_makes_around_deploys_answer_empty(sm, sm_unvalidated):
    """The SDK's teardown lists an endpoint's monitoring schedules before deleting it."""
    assert sm.list_monitoring_schedules(EndpointName="ep")["MonitoringScheduleSummaries"] == []
    for call, member in ((sm.list_data_quality_job_definitions, "JobDefinitionSummaries"),
                         (sm.list_model_quality_job_definitions, "JobDefinitionSummaries"),
                         (sm.list_model_bias_job_definitions, "JobDefinitionSummaries"),
                         (sm.list_model_explainability_job_definitions, "JobDefinitionSummaries"),
                         (sm.list_monitoring_executions, "MonitoringExecutionSummaries"),
                         (sm.list_model_package_groups, "ModelPackageGroupSummaryList")):
        assert call()[member] == []
    with pytest.raises(sm.exceptions.ClientError) as info:  # still validated against the model
        sm_unvalidated.list_monitoring_schedules(MaxResults=0)
    assert info.value.response["Error"]["Code"] == "ValidationException"
