"""CloudWatch on the one URL (issue 15): SageMaker's metrics from real invocations, exact;
PutMetricData, GetMetricStatistics, GetMetricData with metric math, ListMetrics; alarms that
evaluate on the emulator's clock. Driven by a default boto3 client (Smithy RPC v2 CBOR) and by
raw AWS JSON 1.0 requests."""

import datetime as dt
import json
import time

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import client, deploy

DIMS = [{"Name": "EndpointName", "Value": "cw"}, {"Name": "VariantName", "Value": "AllTraffic"}]


@pytest.fixture
def cw_env(fast):
    fast.reset()
    return fast, client(fast.url), client(fast.url, "sagemaker-runtime"), client(fast.url, "cloudwatch")


def window():
    now = dt.datetime.now(dt.timezone.utc)
    return {"StartTime": now - dt.timedelta(minutes=10), "EndTime": now + dt.timedelta(minutes=1)}


def statistics(cw, name, stats=("Sum",), dims=DIMS, period=3600):
    answer = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName=name, Dimensions=dims,
                                      Period=period, Statistics=list(stats), **window())
    return answer["Datapoints"]


def wait_for_state(cw, name, state, reason="", seconds=30.0):
    """The alarm once it is in `state` with a reason starting `reason` (or at the deadline)."""
    deadline = time.monotonic() + seconds
    while True:
        alarm = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        if (alarm["StateValue"] == state and alarm["StateReason"].startswith(reason)) or time.monotonic() > deadline:
            return alarm
        time.sleep(0.1)


def test_invocation_metrics_are_exact(cw_env):
    _, sm, rt, cw = cw_env
    deploy(sm, "cw", InitialInstanceCount=2)
    for _ in range(37):
        rt.invoke_endpoint(EndpointName="cw", Body=b"x")
    [point] = statistics(cw, "Invocations", ("Sum", "SampleCount"))
    assert (point["Sum"], point["SampleCount"], point["Unit"]) == (37.0, 37.0, "None")
    assert statistics(cw, "InvocationsPerInstance")[0]["Sum"] == pytest.approx(37 / 2)
    assert statistics(cw, "Invocation5XXErrors")[0]["Sum"] == 0.0
    [latency] = statistics(cw, "ModelLatency", ("Average", "Maximum", "SampleCount"))
    assert latency["Unit"] == "Microseconds" and latency["SampleCount"] == 37.0
    assert 0 < latency["Average"] <= latency["Maximum"] < 10_000_000
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/SageMaker", Dimensions=DIMS[:1])["Metrics"]}
    assert {"Invocations", "InvocationsPerInstance", "ModelLatency", "OverheadLatency", "Invocation4XXErrors",
            "Invocation5XXErrors", "InvocationModelErrors", "ConcurrentRequestsPerModel"} <= names


def test_custom_metrics_and_metric_math(cw_env):
    _, _, _, cw = cw_env
    cw.put_metric_data(Namespace="App", MetricData=[
        {"MetricName": "Queue", "Value": 4.0, "Unit": "Count"},
        {"MetricName": "Queue", "Values": [1.0, 3.0], "Counts": [1.0, 2.0], "Unit": "Count"},
        {"MetricName": "Workers", "StatisticValues": {"SampleCount": 2, "Sum": 4, "Minimum": 1, "Maximum": 3}}])
    results = cw.get_metric_data(MetricDataQueries=[
        {"Id": "q", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Queue"}, "Period": 60, "Stat": "Sum"}},
        {"Id": "w", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Workers"}, "Period": 60,
                                   "Stat": "Sum"}, "ReturnData": False},
        {"Id": "per_worker", "Expression": "q / w", "Label": "queue per worker"}], **window())["MetricDataResults"]
    by_id = {r["Id"]: r for r in results}
    assert by_id.keys() == {"q", "per_worker"} and by_id["q"]["Values"] == [11.0]
    assert by_id["per_worker"]["Values"] == [11.0 / 4] and by_id["per_worker"]["Label"] == "queue per worker"
    with pytest.raises(ClientError) as info:
        cw.put_metric_data(Namespace="AWS/SageMaker", MetricData=[{"MetricName": "Invocations", "Value": 1.0}])
    assert info.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_percentiles_of_latencies_and_of_single_values(cw_env):
    """ExtendedStatistics, a `p99` Stat and a percentile alarm: from invocations and from
    PutMetricData's single values, within 1%; a statistic set alone has no percentiles."""
    _, sm, rt, cw = cw_env
    deploy(sm, "cw")
    for _ in range(30):
        rt.invoke_endpoint(EndpointName="cw", Body=b"x")
    [point] = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName="ModelLatency", Dimensions=DIMS,
                                       Period=3600, Statistics=["Minimum", "Maximum"],
                                       ExtendedStatistics=["p0", "p50", "p99", "p100"], **window())["Datapoints"]
    shown = point["ExtendedStatistics"]
    assert (shown["p0"], shown["p100"]) == (point["Minimum"], point["Maximum"])
    assert point["Minimum"] <= shown["p50"] <= shown["p99"] <= point["Maximum"]

    cw.put_metric_data(Namespace="App", MetricData=[
        {"MetricName": "Wait", "Values": [float(v) for v in range(1, 101)], "Unit": "Milliseconds"},
        {"MetricName": "Sets", "StatisticValues": {"SampleCount": 2, "Sum": 4, "Minimum": 1, "Maximum": 3}}])
    [result] = cw.get_metric_data(MetricDataQueries=[{"Id": "p", "MetricStat": {
        "Metric": {"Namespace": "App", "MetricName": "Wait"}, "Period": 60, "Stat": "p90"}}], **window())[
        "MetricDataResults"]
    assert result["Values"] == [pytest.approx(90.0, rel=0.011)]
    assert cw.get_metric_statistics(Namespace="App", MetricName="Sets", Period=60, ExtendedStatistics=["p50"],
                                    **window())["Datapoints"] == []
    cw.put_metric_alarm(AlarmName="slow", Namespace="App", MetricName="Wait", ExtendedStatistic="p90", Period=60,
                        EvaluationPeriods=1, Threshold=50.0, ComparisonOperator="GreaterThanThreshold")
    cw.put_metric_data(Namespace="App", MetricData=[{"MetricName": "Wait", "Values": [10.0, 80.0, 95.0]}])
    assert wait_for_state(cw, "slow", "ALARM")["StateValue"] == "ALARM"
    with pytest.raises(ClientError) as info:
        cw.get_metric_statistics(Namespace="App", MetricName="Wait", Period=60, ExtendedStatistics=["tm99"],
                                 **window())
    assert info.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_alarm_goes_to_alarm_and_back_on_the_fast_clock(cw_env):
    _, sm, rt, cw = cw_env
    deploy(sm, "cw")
    cw.put_metric_alarm(AlarmName="busy", Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=DIMS,
                        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=5.0,
                        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching")
    for _ in range(20):  # split over two seconds at worst, one still holds more than 5
        rt.invoke_endpoint(EndpointName="cw", Body=b"x")
    alarm = wait_for_state(cw, "busy", "ALARM")
    assert alarm["StateValue"] == "ALARM" and alarm["StateReason"].startswith("Threshold Crossed: 1 out of the last 1")
    assert json.loads(alarm["StateReasonData"])["threshold"] == 5.0
    # idle: the next periods have no datapoints, which count as not breaching
    assert wait_for_state(cw, "busy", "OK")["StateValue"] == "OK"
    assert [a["AlarmName"] for a in cw.describe_alarms_for_metric(
        Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=DIMS)["MetricAlarms"]] == ["busy"]


def test_alarm_state_actions_and_deletion(cw_env):
    _, _, _, cw = cw_env
    cw.put_metric_alarm(AlarmName="manual", Namespace="App", MetricName="Nothing", Statistic="Average", Period=60,
                        EvaluationPeriods=3, DatapointsToAlarm=2, Threshold=1.0, ComparisonOperator="LessThanThreshold")
    assert wait_for_state(cw, "manual", "INSUFFICIENT_DATA", "Insufficient Data")["StateReason"].startswith(
        "Insufficient Data")  # evaluated: no datapoints
    cw.disable_alarm_actions(AlarmNames=["manual"])
    assert cw.describe_alarms(AlarmNames=["manual"])["MetricAlarms"][0]["ActionsEnabled"] is False
    cw.set_alarm_state(AlarmName="manual", StateValue="ALARM", StateReason="testing")
    assert cw.describe_alarms(StateValue="ALARM")["MetricAlarms"][0]["StateReason"] == "testing"
    with pytest.raises(ClientError) as info:
        cw.delete_alarms(AlarmNames=["manual", "nope"])
    assert info.value.response["Error"]["Code"] == "ResourceNotFound"
    cw.delete_alarms(AlarmNames=["manual"])
    assert cw.describe_alarms()["MetricAlarms"] == []
    with pytest.raises(ClientError) as info:
        cw.put_metric_alarm(AlarmName="bad", Namespace="App", MetricName="X", Period=60, EvaluationPeriods=1,
                            Threshold=1.0, ComparisonOperator="LessThanThreshold")
    assert info.value.response["Error"]["Code"] == "InvalidParameterCombination"


def test_alarm_history_and_tags(cw_env):
    """DescribeAlarmHistory (creation, state changes, actions; newest first; kept after the
    alarm is deleted, as on AWS) and the tags infrastructure tools read back."""
    _, _, _, cw = cw_env
    sns, sqs = client(cw_env[0].url, "sns"), client(cw_env[0].url, "sqs")
    topic = sns.create_topic(Name="alarm-notes")["TopicArn"]
    queue = sqs.create_queue(QueueName="alarm-notes")["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
    cw.put_metric_alarm(AlarmName="noted", Namespace="App", MetricName="Nothing", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
                        AlarmActions=[topic], Tags=[{"Key": "team", "Value": "ml"}])
    cw.set_alarm_state(AlarmName="noted", StateValue="ALARM", StateReason="by hand",
                       StateReasonData=json.dumps({"why": "test"}))
    items = cw.describe_alarm_history(AlarmName="noted")["AlarmHistoryItems"]  # the evaluator may add more
    stamps = [i["Timestamp"] for i in items]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    created = items[-1]
    assert (created["HistoryItemType"], created["HistorySummary"]) == ("ConfigurationUpdate", 'Alarm "noted" created')
    [moved] = [i for i in items if i["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM"]
    assert json.loads(moved["HistoryData"])["newState"] == {"stateValue": "ALARM", "stateReason": "by hand",
                                                            "stateReasonData": {"why": "test"}}
    assert f"Successfully executed action {topic}" in [i["HistorySummary"] for i in items
                                                       if i["HistoryItemType"] == "Action"]
    [delivered] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)["Messages"]  # CloudWatch's SNS message
    envelope = json.loads(delivered["Body"])
    assert envelope["Subject"] == 'ALARM: "noted" in US East (N. Virginia)'
    note = json.loads(envelope["Message"])
    assert (note["OldStateValue"], note["NewStateValue"], note["NewStateReason"]) == (
        "INSUFFICIENT_DATA", "ALARM", "by hand")
    assert note["Region"] == "US East (N. Virginia)" and note["AlarmActions"] == [topic]
    assert note["Trigger"]["MetricName"] == "Nothing" and note["Trigger"]["Statistic"] == "SUM"
    assert note["StateChangeTime"].endswith("+0000")
    assert {i["HistoryItemType"] for i in cw.describe_alarm_history(
        AlarmName="noted", HistoryItemType="StateUpdate")["AlarmHistoryItems"]} == {"StateUpdate"}

    arn = cw.describe_alarms(AlarmNames=["noted"])["MetricAlarms"][0]["AlarmArn"]
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "stage", "Value": "ci"}])
    cw.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "stage", "Value": "ci"}]
    cw.delete_alarms(AlarmNames=["noted"])
    with pytest.raises(ClientError) as info:
        cw.list_tags_for_resource(ResourceARN=arn)
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert cw.describe_alarm_history(AlarmName="noted")["AlarmHistoryItems"]  # the history outlives it


def test_aws_json_1_0_is_answered_too(cw_env):
    server, _, _, cw = cw_env
    cw.put_metric_data(Namespace="App", MetricData=[{"MetricName": "Json", "Value": 2.0}])
    status, headers, body = server.post("/", json.dumps({"Namespace": "App"}).encode(), {
        "X-Amz-Target": "GraniteServiceVersion20100801.ListMetrics", "Content-Type": "application/x-amz-json-1.0",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261202/us-east-1/monitoring/aws4_request, "
                         "SignedHeaders=host, Signature=" + "0" * 64})
    assert status == 200 and headers["Content-Type"] == "application/x-amz-json-1.0"
    assert json.loads(body) == {"Metrics": [{"Namespace": "App", "MetricName": "Json", "Dimensions": []}]}


def test_workers_cpu_and_memory_and_the_async_backlog(cw_env):
    server, sm, rt, cw = cw_env
    deploy(sm, "cw", InitialInstanceCount=2)
    server.client("s3").create_bucket(Bucket="out")
    sm.create_endpoint_config(EndpointConfigName="async-c", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "cw-model", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}],
        AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://out/r"}})
    sm.create_endpoint(EndpointName="async", EndpointConfigName="async-c")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="async", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    rt.invoke_endpoint_async(EndpointName="async", Body=b"x")

    def sampled(namespace, name, dims):
        return cw.get_metric_statistics(Namespace=namespace, MetricName=name, Dimensions=dims, Period=60,
                                        Statistics=["SampleCount", "Maximum"], **window())["Datapoints"]

    deadline = time.monotonic() + 30
    while not (sampled("/aws/sagemaker/Endpoints", "MemoryUtilization", DIMS)
               and sampled("AWS/SageMaker", "ApproximateBacklogSize", [DIMS[0] | {"Value": "async"}])):
        assert time.monotonic() < deadline, "no CPU, memory or backlog samples arrived"
        time.sleep(0.2)
    memory = sampled("/aws/sagemaker/Endpoints", "MemoryUtilization", DIMS)[0]
    assert 0 < memory["Maximum"] < 100  # a worker's resident memory against ml.m5.large's 8 GiB
    names = {m["MetricName"] for m in cw.list_metrics(Namespace="/aws/sagemaker/Endpoints")["Metrics"]}
    assert names <= {"CPUUtilization", "MemoryUtilization"} and "MemoryUtilization" in names
    backlog = {m["MetricName"] for m in cw.list_metrics(Namespace="AWS/SageMaker", Dimensions=[
        {"Name": "EndpointName", "Value": "async"}])["Metrics"]}
    assert {"ApproximateBacklogSize", "ApproximateBacklogSizePerInstance", "ApproximateAgeOfOldestRequest",
            "HasBacklogWithoutCapacity"} <= backlog


@pytest.mark.parametrize("protocol", ["query", "json"])
def test_older_botocore_protocols_are_answered(cw_env, monkeypatch, protocol):
    """A boto3 client made to speak query (botocore before JSON) or JSON 1.0 instead of CBOR."""
    import botocore.model

    order = botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS
    monkeypatch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS",
                        (protocol, *(p for p in order if p != protocol)))
    server, sm, rt, _ = cw_env
    cw = client(server.url, "cloudwatch")
    assert cw.meta.service_model.resolved_protocol == protocol
    deploy(sm, "cw")
    for _ in range(3):
        rt.invoke_endpoint(EndpointName="cw", Body=b"x")
    cw.put_metric_data(Namespace="App", MetricData=[{"MetricName": "M", "Value": 1.5, "Unit": "Count",
                                                     "Dimensions": [{"Name": "K", "Value": "v"}]}])
    [point] = statistics(cw, "Invocations", ("Sum",))
    assert point["Sum"] == 3.0 and point["Timestamp"].tzinfo is not None
    listed = cw.list_metrics(Namespace="App")["Metrics"]
    assert listed == [{"Namespace": "App", "MetricName": "M", "Dimensions": [{"Name": "K", "Value": "v"}]}]
    cw.put_metric_alarm(AlarmName="q", Namespace="App", MetricName="M", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    assert cw.describe_alarms()["MetricAlarms"][0]["AlarmName"] == "q"
    with pytest.raises(ClientError) as info:
        cw.delete_alarms(AlarmNames=["missing"])
    assert info.value.response["Error"]["Code"] == "ResourceNotFound"


@pytest.mark.parametrize("region", ["cn-north-1", "us-gov-west-1"])
def test_an_alarms_sns_action_runs_in_every_partition(cw_env, region):
    """Issue 26: actions were recognised by an `arn:aws:sns:` prefix, so an SNS action in a
    China or GovCloud region (`arn:aws-cn:`, `arn:aws-us-gov:`) was silently dropped."""
    server = cw_env[0]
    cw, sns, sqs = (client(server.url, s, region=region) for s in ("cloudwatch", "sns", "sqs"))
    topic = sns.create_topic(Name="partition-notes")["TopicArn"]
    assert topic.startswith("arn:aws-cn:" if region.startswith("cn-") else "arn:aws-us-gov:")
    queue = sqs.create_queue(QueueName="partition-notes")["QueueUrl"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sqs.get_queue_attributes(
        QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
    cw.put_metric_alarm(AlarmName="far", Namespace="App", MetricName="Nothing", Statistic="Sum", Period=60,
                        EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
                        AlarmActions=[topic])
    alarm_arn = cw.describe_alarms(AlarmNames=["far"])["MetricAlarms"][0]["AlarmArn"]
    assert alarm_arn.startswith(topic.split(":sns:")[0] + ":cloudwatch:")
    cw.set_alarm_state(AlarmName="far", StateValue="ALARM", StateReason="by hand")
    [delivered] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=5)["Messages"]
    assert json.loads(json.loads(delivered["Body"])["Message"])["NewStateValue"] == "ALARM"
