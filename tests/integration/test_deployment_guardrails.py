"""Deployment guardrails (issue 15): UpdateEndpoint's DeploymentConfig shifts traffic to the new
fleet in canary or linear steps, bakes, and rolls everything back when an alarm trips, with
no failed call; on a clock 60 times faster than wall time."""

import datetime

import pytest

from sagemaker_emu.testing import EmulatorProcess, client, deploy
from tests.integration.test_autoscaling import Load, until


@pytest.fixture
def env(fast):
    fast.reset()
    return fast, client(fast.url), client(fast.url, "sagemaker-runtime"), client(fast.url, "cloudwatch")


def green_config(sm, name="green"):
    """A new config whose variant has another name, so answers tell the fleets apart."""
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "Green", "ModelName": "gr-model", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2}])


class Answers(Load):
    """Callers that note which variant answered each call."""

    def __init__(self, rt, name):
        self.variants = []
        super().__init__(lambda: self.variants.append(
            rt.invoke_endpoint(EndpointName=name, Body=b"x")["InvokedProductionVariant"]), callers=2, pause=0.01)


def phase(sm, name):
    pending = sm.describe_endpoint(EndpointName=name).get("PendingDeploymentSummary")
    return pending["ProductionVariants"][0]["VariantStatus"][0]["Status"] if pending else None


def calls_of(cw, config, variant):
    """Invocations counted under (EndpointConfigName, EndpointName, VariantName)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return sum(p["Sum"] for p in cw.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="Invocations", Statistics=["Sum"], Period=60,
        StartTime=now - datetime.timedelta(minutes=10), EndTime=now + datetime.timedelta(minutes=1),
        Dimensions=[{"Name": "EndpointConfigName", "Value": config}, {"Name": "EndpointName", "Value": "gr"},
                    {"Name": "VariantName", "Value": variant}])["Datapoints"])


def test_a_canary_rolls_back_when_its_alarm_trips(env):
    server, sm, rt, cw = env
    deploy(sm, "gr")
    green_config(sm)
    cw.put_metric_alarm(AlarmName="gr-latency", Namespace="AWS/SageMaker", MetricName="ModelLatency",
                        Dimensions=[{"Name": "EndpointName", "Value": "gr"}, {"Name": "VariantName", "Value": "Green"}],
                        Statistic="Maximum", Period=60, EvaluationPeriods=1, Threshold=60_000_000.0,
                        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching")
    answers = Answers(rt, "gr")
    try:
        sm.update_endpoint(EndpointName="gr", EndpointConfigName="green", DeploymentConfig={
            "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
                "Type": "CANARY", "WaitIntervalInSeconds": 3600, "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1}},
                "TerminationWaitInSeconds": 0},
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "gr-latency"}]}})
        until(lambda: phase(sm, "gr") == "Baking", "the canary to bake")
        until(lambda: "Green" in answers.variants[-50:] and "AllTraffic" in answers.variants[-50:],
              "calls to reach both fleets")
        # while the update runs, each fleet's calls are counted under its endpoint config too
        assert calls_of(cw, "green", "Green") > 0 and calls_of(cw, "gr-config", "AllTraffic") > 0
        described = sm.describe_endpoint(EndpointName="gr")
        assert described["EndpointStatus"] == "Updating"
        assert described["PendingDeploymentSummary"]["ProductionVariants"][0]["CurrentWeight"] == pytest.approx(0.5)
        cw.set_alarm_state(AlarmName="gr-latency", StateValue="ALARM", StateReason="the canary is too slow")
        until(lambda: sm.describe_endpoint(EndpointName="gr")["EndpointStatus"] == "InService", "the rollback")
        count = len(answers.variants)
        until(lambda: len(answers.variants) > count + 20, "more calls after the rollback")
    finally:
        answers.end()
    assert answers.failures == []  # no call failed during the shift or the rollback
    assert set(answers.variants[count:]) == {"AllTraffic"}  # all traffic is back on the old fleet
    described = sm.describe_endpoint(EndpointName="gr")
    assert described["EndpointConfigName"] == "gr-config"
    assert described["FailureReason"] == ("Rolling back the update: alarm gr-latency went into ALARM while traffic "
                                          "was shifting.")
    assert described["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "CANARY"


def test_a_linear_shift_completes_and_retires_the_old_fleet(env):
    server, sm, rt, cw = env
    deploy(sm, "gr")
    green_config(sm)
    answers = Answers(rt, "gr")
    try:
        sm.update_endpoint(EndpointName="gr", EndpointConfigName="green", DeploymentConfig={
            "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
                "Type": "LINEAR", "WaitIntervalInSeconds": 60, "LinearStepSize": {"Type": "CAPACITY_PERCENT",
                                                                                   "Value": 50}}}})
        seen = set()
        until(lambda: seen.add(phase(sm, "gr")) or sm.describe_endpoint(EndpointName="gr")["EndpointStatus"]
              == "InService", "the shift to finish")
        count = len(answers.variants)
        until(lambda: len(answers.variants) > count + 20, "more calls after the update")
    finally:
        answers.end()
    assert answers.failures == [] and set(answers.variants[count:]) == {"Green"}
    counted = calls_of(cw, "green", "Green")
    rt.invoke_endpoint(EndpointName="gr", Body=b"x")  # the update is over: no config dimension any more
    assert 0 < counted == calls_of(cw, "green", "Green")
    assert {"ActivatingTraffic", "Baking"} & seen  # DescribeEndpoint showed the shift on its way
    described = sm.describe_endpoint(EndpointName="gr")
    assert described["EndpointConfigName"] == "green" and "PendingDeploymentSummary" not in described
    assert [v["VariantName"] for v in described["ProductionVariants"]] == ["Green"]


def rolling(batch, wait, **more):
    return {"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": batch},
                                    "WaitIntervalInSeconds": wait, **more}}


@pytest.fixture
def faster():
    """A clock 600 times faster: AWS's shortest MaximumExecutionTimeoutInSeconds (600) is 1 s."""
    srv = EmulatorProcess("--clock-speed", "600")
    yield srv, client(srv.url), client(srv.url, "sagemaker-runtime")
    srv.stop()


def test_a_rolling_update_past_its_time_limit_rolls_back(faster):
    """MaximumExecutionTimeoutInSeconds counts from UpdateEndpoint; past it, the update is
    rolled back as if an alarm had tripped."""
    server, sm, rt = faster
    deploy(sm, "gr")
    green_config(sm)
    answers = Answers(rt, "gr")
    try:
        sm.update_endpoint(EndpointName="gr", EndpointConfigName="green",
                           DeploymentConfig=rolling(1, 3600, MaximumExecutionTimeoutInSeconds=600))
        until(lambda: sm.describe_endpoint(EndpointName="gr")["EndpointStatus"] == "InService", "the rollback")
    finally:
        answers.end()
    described = sm.describe_endpoint(EndpointName="gr")
    assert described["EndpointConfigName"] == "gr-config" and answers.failures == []
    assert described["FailureReason"] == ("Rolling back the update: it did not finish within "
                                          "MaximumExecutionTimeoutInSeconds (600 s).")


def test_rollback_maximum_batch_size_returns_traffic_in_batches(env):
    """Tripped at 3/4 of the traffic on the new fleet, a rollback in batches of one of the old
    fleet's two instances gives back half of the traffic per step: 3/4 -> 1/4 -> none."""
    server, sm, rt, cw = env
    deploy(sm, "gr", InitialInstanceCount=2)
    sm.create_endpoint_config(EndpointConfigName="green", ProductionVariants=[{
        "VariantName": "Green", "ModelName": "gr-model", "InstanceType": "ml.m5.large", "InitialInstanceCount": 4}])
    cw.put_metric_alarm(AlarmName="gr-errors", Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
                        Dimensions=[{"Name": "EndpointName", "Value": "gr"}, {"Name": "VariantName", "Value": "Green"}],
                        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
                        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching")
    sm.update_endpoint(EndpointName="gr", EndpointConfigName="green", DeploymentConfig={
        **rolling(1, 120, RollbackMaximumBatchSize={"Type": "INSTANCE_COUNT", "Value": 1}),
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "gr-errors"}]}})

    def weight():
        described = sm.describe_endpoint(EndpointName="gr")
        pending = described.get("PendingDeploymentSummary")
        return described["EndpointStatus"], pending["ProductionVariants"][0].get("CurrentWeight") if pending else None

    until(lambda: weight() == ("Updating", pytest.approx(0.75)), "three quarters of the traffic on the new fleet")
    cw.set_alarm_state(AlarmName="gr-errors", StateValue="ALARM", StateReason="errors")
    seen = []
    until(lambda: seen.append(weight()) or seen[-1][0] == "InService", "the rollback")
    back = [w for status, w in dict.fromkeys(seen) if status == "RollingBack"]
    assert back in ([0.25], [0.25, 0.0])  # the last step (none) may pass between two looks
    assert sm.describe_endpoint(EndpointName="gr")["EndpointConfigName"] == "gr-config"
