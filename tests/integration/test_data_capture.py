"""Data capture (issue 14): sampled invocations land in S3 as SageMaker's capture JSON lines,
under <DestinationS3Uri>/<endpoint>/<variant>/yyyy/mm/dd/hh/."""

import base64
import json
import re
import time

from sagemaker_emu.testing import client, variant


def capture_config(percentage=100, modes=("Input", "Output"), **extra):
    return {"EnableCapture": True, "InitialSamplingPercentage": percentage,
            "DestinationS3Uri": "s3://captures/datacapture", "CaptureOptions": [{"CaptureMode": m} for m in modes],
            **extra}


def deploy_capturing(sm, name, config):
    sm.create_model(ModelName=f"{name}-m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    sm.create_endpoint_config(EndpointConfigName=f"{name}-c", ProductionVariants=[variant(model=f"{name}-m")],
                              DataCaptureConfig=config)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-c")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def captured(s3, endpoint, count, seconds=20.0):
    """Records written so far for the endpoint, waiting until `count` have been flushed."""
    deadline = time.monotonic() + seconds
    while True:
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket="captures", Prefix=f"datacapture/{endpoint}/") for o in page.get("Contents", [])]
        records = [json.loads(line) for key in keys
                   for line in s3.get_object(Bucket="captures", Key=key)["Body"].read().splitlines()]
        if len(records) >= count or time.monotonic() > deadline:
            return keys, records
        time.sleep(0.2)


def test_invocations_are_captured_in_sagemakers_format(server, sm, rt):
    s3 = client(server.url, "s3")
    s3.create_bucket(Bucket="captures")
    deploy_capturing(sm, "cap", capture_config())
    rt.invoke_endpoint(EndpointName="cap", Body=b"1,2,3", ContentType="text/csv", InferenceId="row-1")
    rt.invoke_endpoint(EndpointName="cap", Body=b'{"a": 1}', ContentType="application/json")
    rt.invoke_endpoint(EndpointName="cap", Body=b"\x00\x01", ContentType="application/octet-stream")
    keys, records = captured(s3, "cap", 3)
    assert all(re.fullmatch(r"datacapture/cap/AllTraffic/\d{4}/\d\d/\d\d/\d\d/\d\d-\d\d-\d{3}-[0-9a-f-]{36}\.jsonl", k)
               for k in keys)
    by_encoding = {r["captureData"]["endpointInput"]["encoding"]: r for r in records}
    csv = by_encoding["CSV"]
    assert csv["captureData"]["endpointInput"] == {"observedContentType": "text/csv", "mode": "INPUT",
                                                   "data": "1,2,3", "encoding": "CSV"}
    assert csv["captureData"]["endpointOutput"]["mode"] == "OUTPUT" and csv["captureData"]["endpointOutput"]["data"] == "1,2,3"
    assert csv["eventMetadata"]["inferenceId"] == "row-1" and csv["eventVersion"] == "0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", csv["eventMetadata"]["inferenceTime"])
    assert by_encoding["JSON"]["captureData"]["endpointInput"]["data"] == '{"a": 1}'
    assert base64.b64decode(by_encoding["BASE64"]["captureData"]["endpointInput"]["data"]) == b"\x00\x01"


def test_sampling_and_capture_modes(server, sm, rt):
    s3 = client(server.url, "s3")
    s3.create_bucket(Bucket="captures")
    deploy_capturing(sm, "none", capture_config(percentage=0))
    deploy_capturing(sm, "inputs", capture_config(modes=("Input",)))
    for _ in range(5):
        rt.invoke_endpoint(EndpointName="none", Body=b"x")
    rt.invoke_endpoint(EndpointName="inputs", Body=b"y")
    _, records = captured(s3, "inputs", 1)
    assert [set(r["captureData"]) for r in records] == [{"endpointInput"}]
    # sampled at 0 %: nothing. The flush that wrote "inputs" wrote every buffer, "none"'s included.
    assert captured(s3, "none", 1, seconds=0)[1] == []
