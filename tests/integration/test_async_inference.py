"""InvokeEndpointAsync (issue 14): accepted at once, queued per endpoint, answered into S3, with
SageMaker's SNS notifications delivered to an SQS queue subscribed to the topic; requests wait
while the endpoint has no instances."""

import json

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import client

ACCOUNT = "123456789012"


def topics_into_queues(url: str, prefix: str) -> dict[str, tuple[str, str]]:
    """Two SNS topics (`success`, `error`), each feeding an SQS queue: name -> (topic ARN, queue URL)."""
    sns, sqs = client(url, "sns"), client(url, "sqs")
    queues = {}
    for name in ("success", "error"):
        topic = sns.create_topic(Name=f"{prefix}-{name}")["TopicArn"]
        queue = sqs.create_queue(QueueName=f"{prefix}-{name}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        queues[name] = (topic, queue)
    return queues


@pytest.fixture
def aws(server):
    """S3, SNS and SQS on the emulator's URL: a bucket, two topics, each feeding a queue."""
    s3, sqs = client(server.url, "s3"), client(server.url, "sqs")
    s3.create_bucket(Bucket="async-io")
    return s3, sqs, topics_into_queues(server.url, "async")


def async_endpoint(sm, queues, name="async", include=(), **variant_fields):
    notification = {"SuccessTopic": queues["success"][0], "ErrorTopic": queues["error"][0],
                    **({"IncludeInferenceResponseIn": list(include)} if include else {})}
    config = {"OutputConfig": {"S3OutputPath": "s3://async-io/output", "S3FailurePath": "s3://async-io/failures",
                               "NotificationConfig": notification},
              "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 2}}
    sm.create_model(ModelName=f"{name}-model", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    sm.create_endpoint_config(EndpointConfigName=f"{name}-config", AsyncInferenceConfig=config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": f"{name}-model", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1, **variant_fields}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return config


def notifications(sqs, queue_url, count):
    """SNS messages delivered to the queue, waiting for them with SQS long polls."""
    found = []
    for _ in range(20):
        for message in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1,
                                           MaxNumberOfMessages=10).get("Messages", []):
            found.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if len(found) >= count:
            return found
    raise AssertionError(f"{len(found)} of {count} notifications arrived")


def test_output_lands_in_s3_and_sns_notifies_sqs(sm, rt, aws):
    s3, sqs, queues = aws
    async_endpoint(sm, queues)
    s3.put_object(Bucket="async-io", Key="in/1.json", Body=b'{"x": 1}')
    answer = rt.invoke_endpoint_async(EndpointName="async", InputLocation="s3://async-io/in/1.json",
                                      ContentType="application/json", InferenceId="job-1")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202 and answer["InferenceId"] == "job-1"
    assert answer["OutputLocation"] == "s3://async-io/output/job-1.out"
    assert answer["FailureLocation"] == "s3://async-io/failures/job-1-error.out"
    [message] = notifications(sqs, queues["success"][1], 1)
    assert message["invocationStatus"] == "Completed" and message["inferenceId"] == "job-1"
    assert message["eventSource"] == "aws:sagemaker" and message["eventName"] == "InferenceResult"
    assert message["requestParameters"] == {"contentType": "application/json", "endpointName": "async",
                                            "inputLocation": "s3://async-io/in/1.json"}
    assert message["responseParameters"]["outputLocation"] == answer["OutputLocation"]
    assert "responseBody" not in message  # only with IncludeInferenceResponseIn
    output = s3.get_object(Bucket="async-io", Key="output/job-1.out")
    assert output["Body"].read() == b'{"x": 1}' and output["ContentType"] == "application/json"


def test_inline_body_generated_id_and_output_extension(sm, rt, aws):
    s3, sqs, queues = aws
    async_endpoint(sm, queues)
    answer = rt.invoke_endpoint_async(EndpointName="async", Body=b"inline", ContentType="text/plain",
                                      S3OutputPathExtension="team/a", Filename="result.txt")
    assert len(answer["InferenceId"]) == 36 and answer["OutputLocation"] == "s3://async-io/output/team/a/result.txt"
    notifications(sqs, queues["success"][1], 1)
    assert s3.get_object(Bucket="async-io", Key="output/team/a/result.txt")["Body"].read() == b"inline"


def test_include_inference_response_in_puts_the_answer_in_the_notification(sm, rt, aws):
    """Text as is, bytes in base64, at most 128 KB; only for the topics named."""
    s3, sqs, queues = aws
    async_endpoint(sm, queues, include=["SUCCESS_NOTIFICATION_TOPIC"])
    s3.put_object(Bucket="async-io", Key="in/large", Body=b"y" * (128 * 1024 + 1))
    rt.invoke_endpoint_async(EndpointName="async", InputLocation="s3://async-io/in/large", InferenceId="large")
    rt.invoke_endpoint_async(EndpointName="async", Body=b'{"x": 1}', ContentType="application/json")
    rt.invoke_endpoint_async(EndpointName="async", Body=b"\xff\x00", ContentType="application/octet-stream")
    rt.invoke_endpoint_async(EndpointName="async", InputLocation="s3://async-io/in/missing.json")
    messages = notifications(sqs, queues["success"][1], 3)
    assert ["responseBody" in m for m in messages if m["inferenceId"] == "large"] == [False]
    bodies = sorted((m["responseBody"] for m in messages if "responseBody" in m), key=lambda b: b["encoding"])
    assert bodies == [{"content": "/wA=", "encoding": "BASE64"}, {"content": '{"x": 1}', "encoding": "UTF-8"}]
    [failed] = notifications(sqs, queues["error"][1], 1)
    assert "responseBody" not in failed


def test_failures_go_to_the_failure_path_and_the_error_topic(sm, rt, aws):
    s3, sqs, queues = aws
    async_endpoint(sm, queues)
    answer = rt.invoke_endpoint_async(EndpointName="async", InputLocation="s3://async-io/in/missing.json",
                                      InferenceId="lost")
    [message] = notifications(sqs, queues["error"][1], 1)
    assert message["invocationStatus"] == "Failed" and "s3://async-io/in/missing.json" in message["failureReason"]
    assert message["responseParameters"] == {"failureLocation": answer["FailureLocation"]}
    assert s3.get_object(Bucket="async-io", Key="failures/lost-error.out")["Body"].read()


def test_requests_wait_while_the_endpoint_has_no_instances(server, sm, rt, aws):
    s3, sqs, queues = aws
    async_endpoint(sm, queues)
    sm.update_endpoint_weights_and_capacities(EndpointName="async", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 0}])
    sm.get_waiter("endpoint_in_service").wait(EndpointName="async")
    ids = [rt.invoke_endpoint_async(EndpointName="async", Body=f"{i}".encode())["InferenceId"] for i in range(5)]
    assert server.endpoint_view("async")["async"] == {"queued": 5, "running": 0}
    assert sqs.receive_message(QueueUrl=queues["success"][1], WaitTimeSeconds=1).get("Messages") is None
    sm.update_endpoint_weights_and_capacities(EndpointName="async", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 1}])
    assert sorted(m["inferenceId"] for m in notifications(sqs, queues["success"][1], 5)) == sorted(ids)


def test_async_calls_are_validated(sm, rt, aws):
    _, _, queues = aws
    async_endpoint(sm, queues)
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint_async(EndpointName="async")
    assert info.value.response["Error"] == {"Code": "ValidationError",
                                            "Message": "Either InputLocation or Body must be specified."}
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint_async(EndpointName="async", Body=b"x" * 128001)
    assert info.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint_async(EndpointName="nope", Body=b"x")
    assert info.value.response["Error"]["Message"] == f"Endpoint nope of account {ACCOUNT} not found."


def test_invocation_timeout_seconds_bounds_the_model(sm, rt, aws):
    s3, sqs, queues = aws
    config = async_endpoint(sm, queues, name="slow")
    sm.create_model(ModelName="slow-model-2", PrimaryContainer={"Image": "sagemaker-emu/echo",
                                                               "Environment": {"ECHO_LATENCY_MS": "3000"}})
    sm.create_endpoint_config(EndpointConfigName="slow-config-2", AsyncInferenceConfig=config, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "slow-model-2", "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.update_endpoint(EndpointName="slow", EndpointConfigName="slow-config-2")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="slow", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    rt.invoke_endpoint_async(EndpointName="slow", Body=b"late", InvocationTimeoutSeconds=1, InferenceId="late")
    [message] = notifications(sqs, queues["error"][1], 1)
    assert message["inferenceId"] == "late" and "timed out" in message["failureReason"]


def test_an_input_location_without_a_key_fails_with_an_outcome(sm, rt, aws):
    """Issue 25 item 5: `s3://bucket/` was accepted (202), then a traceback and nothing."""
    s3, sqs, queues = aws
    async_endpoint(sm, queues)
    answer = rt.invoke_endpoint_async(EndpointName="async", InputLocation="s3://async-io/", InferenceId="no-key")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    [message] = notifications(sqs, queues["error"][1], 1)
    assert message["inferenceId"] == "no-key" and "s3://async-io/" in message["failureReason"]
    assert s3.get_object(Bucket="async-io", Key="failures/no-key-error.out")["Body"].read()


def test_requests_waiting_when_the_endpoint_is_deleted_each_fail_with_an_outcome(server, sm, rt, aws):
    """Issue 25 item 5: DeleteEndpoint during a drain dropped thousands of accepted requests with
    no outcome for any; now each gets its failure object and the ErrorTopic's notification."""
    s3, sqs, queues = aws
    async_endpoint(sm, queues)
    sm.update_endpoint_weights_and_capacities(EndpointName="async", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 0}])
    sm.get_waiter("endpoint_in_service").wait(EndpointName="async")
    ids = [rt.invoke_endpoint_async(EndpointName="async", Body=b"waits", InferenceId=f"w{i}")["InferenceId"]
           for i in range(5)]
    assert server.endpoint_view("async")["async"] == {"queued": 5, "running": 0}
    sm.delete_endpoint(EndpointName="async")
    failed = notifications(sqs, queues["error"][1], 5)
    assert sorted(m["inferenceId"] for m in failed) == ids
    assert {m["failureReason"] for m in failed} == {"Endpoint async was deleted before the request ran."}
    for inference_id in ids:
        assert s3.get_object(Bucket="async-io", Key=f"failures/{inference_id}-error.out")["Body"].read()


def test_a_large_input_and_answer_never_enter_the_servers_memory():
    """Issue 25 item 5: asynchronous payloads reach 1 GB on SageMaker; they were capped at 6 MiB
    and read whole (four 300 MiB inputs took the server to 1.4 GB). The input goes from S3 to a
    file and is sent from it; the answer is written to a file as it arrives and put to S3 from it."""
    import hashlib
    import os
    import tempfile

    from sagemaker_emu.bench.model_data import _reset_peak
    from sagemaker_emu.bench.stats import proc_status
    from sagemaker_emu.testing import EmulatorProcess
    from tests.integration.test_fleet import eventually

    mib = 1024 * 1024
    srv = EmulatorProcess()
    try:
        sm, rt, s3 = client(srv.url), client(srv.url, "sagemaker-runtime"), client(srv.url, "s3")
        s3.create_bucket(Bucket="async-large")
        sm.create_model(ModelName="big-m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
        sm.create_endpoint_config(EndpointConfigName="big-c", AsyncInferenceConfig={
            "OutputConfig": {"S3OutputPath": "s3://async-large/out"}}, ProductionVariants=[{
                "VariantName": "v", "ModelName": "big-m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName="big", EndpointConfigName="big-c")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="big", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        digest = hashlib.md5(usedforsecurity=False)
        with tempfile.TemporaryFile() as f:
            for _ in range(160):
                chunk = os.urandom(mib)
                digest.update(chunk)
                f.write(chunk)
            f.seek(0)
            s3.put_object(Bucket="async-large", Key="in.bin", Body=f)
        _reset_peak(srv.proc.pid)
        before = proc_status(srv.proc.pid)["VmRSS"]
        answer = rt.invoke_endpoint_async(EndpointName="big", InputLocation="s3://async-large/in.bin",
                                          ContentType="application/octet-stream")
        key = answer["OutputLocation"].split("/", 3)[3]
        eventually(lambda: "Contents" in s3.list_objects_v2(Bucket="async-large", Prefix=key), timeout=60)
        rise_mib = (proc_status(srv.proc.pid)["VmHWM"] - before) / 1024
        stored = hashlib.md5(usedforsecurity=False)
        for chunk in s3.get_object(Bucket="async-large", Key=key)["Body"].iter_chunks(mib):
            stored.update(chunk)
        assert stored.hexdigest() == digest.hexdigest()
        assert rise_mib < 64, f"a 160 MiB asynchronous call raised the server's peak memory by {rise_mib:.0f} MiB"
    finally:
        srv.stop()
