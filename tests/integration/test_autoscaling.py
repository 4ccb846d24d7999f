"""Application Auto Scaling that really scales (issue 15), on a clock 60 times faster than wall
time: AWS's recipes, unchanged, with a default boto3 client. Target tracking on
SageMakerVariantInvocationsPerInstance, inference-component copies on concurrent requests per
copy, and scale-from-zero through a NoCapacityInvocationFailures alarm and a step policy."""

import threading
import time

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import client, deploy
from tests.integration.test_inference_components import component, ic_endpoint

INSTANCES = "sagemaker:variant:DesiredInstanceCount"
COPIES = "sagemaker:inference-component:DesiredCopyCount"


@pytest.fixture
def env(fast):
    fast.reset()
    return (fast, client(fast.url), client(fast.url, "sagemaker-runtime"), client(fast.url, "cloudwatch"),
            client(fast.url, "application-autoscaling"))


def until(predicate, what, seconds=60.0):
    """Wait for an outcome (not a duration): poll until `predicate()` is true."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class Load:
    """Callers invoking an endpoint until stopped, `pause` seconds apart each."""

    def __init__(self, call, callers: int, pause: float = 0.0) -> None:
        self.stop, self.calls, self.failures = threading.Event(), 0, []
        self.threads = [threading.Thread(target=self._run, args=(call, pause), daemon=True) for _ in range(callers)]
        for t in self.threads:
            t.start()

    def _run(self, call, pause) -> None:
        while not self.stop.is_set():
            try:
                call()
                self.calls += 1
            except ClientError as exc:
                self.failures.append(exc.response["Error"]["Code"])
            self.stop.wait(pause)

    def end(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)


def instance_count(sm, name):
    return sm.describe_endpoint(EndpointName=name)["ProductionVariants"][0]["CurrentInstanceCount"]


def test_target_tracking_scales_a_variant_out_under_load_and_in_when_it_drops(env):
    server, sm, rt, cw, aas = env
    deploy(sm, "tt")
    resource = "endpoint/tt/variant/AllTraffic"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=INSTANCES,
                                 MinCapacity=1, MaxCapacity=3)
    policy = aas.put_scaling_policy(
        PolicyName="invocations", ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=INSTANCES,
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 10.0, "ScaleOutCooldown": 60, "ScaleInCooldown": 60,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    high, low = (a["AlarmName"] for a in policy["Alarms"])
    assert high.startswith(f"TargetTracking-{resource}-AlarmHigh-") and low.startswith(f"TargetTracking-{resource}-AlarmLow-")
    [alarm] = cw.describe_alarms(AlarmNames=[high])["MetricAlarms"]
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"], alarm["Threshold"],
            alarm["AlarmActions"]) == ("InvocationsPerInstance", "Sum", 60, 3, 10.0, [policy["PolicyARN"]])

    load = Load(lambda: rt.invoke_endpoint(EndpointName="tt", Body=b"x"), callers=2)
    try:
        until(lambda: instance_count(sm, "tt") == 3, "a scale-out to the maximum")
    finally:
        load.end()
    assert load.failures == []  # scaling out loses no call
    # About 6 calls a (60x) minute: below 90% of the target on 3 instances, and below the target
    # on 1, so the variant settles there; frequent enough that no 1-second period goes empty.
    trickle = Load(lambda: rt.invoke_endpoint(EndpointName="tt", Body=b"x"), callers=2, pause=0.3)
    try:
        until(lambda: instance_count(sm, "tt") == 1, "a scale-in to the minimum")
    finally:
        trickle.end()
    assert trickle.failures == []
    activities = aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=resource)["ScalingActivities"]
    assert activities[-1]["Cause"] == f"monitor alarm {high} in state ALARM triggered policy invocations"
    assert activities[0]["Cause"] == f"monitor alarm {low} in state ALARM triggered policy invocations"
    assert {a["StatusCode"] for a in activities} == {"Successful"}


def test_copies_scale_on_concurrent_requests_per_copy(env):
    server, sm, rt, cw, aas = env
    sm.create_model(ModelName="slow", PrimaryContainer={"Image": "sagemaker-emu/echo",
                                                        "Environment": {"ECHO_LATENCY_MS": "200"}})
    ic_endpoint(sm, "ics")
    component(sm, "ic", "ics", "slow", copies=1)
    resource = "inference-component/ic"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=COPIES,
                                 MinCapacity=1, MaxCapacity=3)
    aas.put_scaling_policy(
        PolicyName="concurrency", ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=COPIES,
        PolicyType="TargetTrackingScaling", TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 1.0, "ScaleOutCooldown": 10, "DisableScaleIn": True, "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"}})
    load = Load(lambda: rt.invoke_endpoint(EndpointName="ics", InferenceComponentName="ic", Body=b"x"), callers=6)
    try:
        until(lambda: sm.describe_inference_component(InferenceComponentName="ic")["RuntimeConfig"]["CurrentCopyCount"]
              == 3, "the copies to scale out")
    finally:
        load.end()
    assert load.failures == []
    assert len(aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"][0]["Alarms"]) == 1


def test_scale_from_zero_with_a_step_policy(env):
    """AWS's recipe: a NoCapacityInvocationFailures alarm runs a step policy that adds a copy."""
    server, sm, rt, cw, aas = env
    sm.create_model(ModelName="echo", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    ic_endpoint(sm, "zero")
    component(sm, "ic0", "zero", "echo", copies=0)
    resource = "inference-component/ic0"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=COPIES,
                                 MinCapacity=0, MaxCapacity=2)
    policy = aas.put_scaling_policy(
        PolicyName="from-zero", ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=COPIES,
        PolicyType="StepScaling", StepScalingPolicyConfiguration={
            "AdjustmentType": "ChangeInCapacity", "MetricAggregationType": "Maximum", "Cooldown": 60,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]})
    cw.put_metric_alarm(AlarmName="ic0-no-capacity", Namespace="AWS/SageMaker",
                        MetricName="NoCapacityInvocationFailures",
                        Dimensions=[{"Name": "InferenceComponentName", "Value": "ic0"}], Statistic="Maximum",
                        Period=30, EvaluationPeriods=1, Threshold=1.0,
                        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="missing",
                        AlarmActions=[policy["PolicyARN"]])
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint(EndpointName="zero", InferenceComponentName="ic0", Body=b"x")
    assert info.value.response["Error"]["Message"].startswith("Inference Component has no capacity")
    until(lambda: sm.describe_inference_component(InferenceComponentName="ic0")["RuntimeConfig"]["CurrentCopyCount"]
          == 1, "a copy to come up")
    assert rt.invoke_endpoint(EndpointName="zero", InferenceComponentName="ic0", Body=b"back")["Body"].read() == b"back"


def test_targets_are_validated_and_policies_own_their_alarms(env):
    server, sm, rt, cw, aas = env
    with pytest.raises(ClientError) as info:
        aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId="endpoint/none/variant/AllTraffic",
                                     ScalableDimension=INSTANCES, MinCapacity=1, MaxCapacity=2)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    deploy(sm, "owned")
    resource = "endpoint/owned/variant/AllTraffic"
    arn = aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=INSTANCES,
                                       MinCapacity=1, MaxCapacity=2, Tags={"team": "ml"})["ScalableTargetARN"]
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=INSTANCES,
                                 MaxCapacity=4)  # an update keeps MinCapacity
    [target] = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    aas.tag_resource(ResourceARN=arn, Tags={"stage": "ci"})
    aas.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert aas.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"stage": "ci"}
    aas.put_scaling_policy(PolicyName="p", ServiceNamespace="sagemaker", ResourceId=resource,
                           ScalableDimension=INSTANCES, PolicyType="TargetTrackingScaling",
                           TargetTrackingScalingPolicyConfiguration={"TargetValue": 10.0, "PredefinedMetricSpecification": {
                               "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
    assert len(cw.describe_alarms()["MetricAlarms"]) == 2
    aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=INSTANCES)
    assert cw.describe_alarms()["MetricAlarms"] == []  # its policies and their alarms went with it
    assert aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
    with pytest.raises(ClientError) as info:
        aas.delete_scaling_policy(PolicyName="p", ServiceNamespace="sagemaker", ResourceId=resource,
                                  ScalableDimension=INSTANCES)
    assert info.value.response["Error"]["Code"] == "ObjectNotFoundException"
    with pytest.raises(ClientError) as info:
        aas.list_tags_for_resource(ResourceARN=arn)  # its tags went with it
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_scheduled_actions_set_the_bounds_and_move_the_capacity(env):
    server, sm, rt, cw, aas = env
    deploy(sm, "sched")
    resource = "endpoint/sched/variant/AllTraffic"
    aas.register_scalable_target(ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=INSTANCES,
                                 MinCapacity=1, MaxCapacity=3)
    aas.put_scheduled_action(ServiceNamespace="sagemaker", ScheduledActionName="morning", ResourceId=resource,
                             ScalableDimension=INSTANCES, Schedule="at(2020-01-01T00:00:00)",  # already due
                             ScalableTargetAction={"MinCapacity": 2, "MaxCapacity": 3})
    until(lambda: instance_count(sm, "sched") == 2, "the scheduled minimum to take effect")
    [target] = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert target["MinCapacity"] == 2
    [action] = aas.describe_scheduled_actions(ServiceNamespace="sagemaker")["ScheduledActions"]
    assert action["Schedule"] == "at(2020-01-01T00:00:00)" and action["ScheduledActionARN"].endswith(
        f"resource/sagemaker/{resource}:scheduledActionName/morning")
    [activity] = aas.describe_scaling_activities(ServiceNamespace="sagemaker")["ScalingActivities"]
    assert activity["Cause"] == "scheduled action name morning was triggered"
    with pytest.raises(ClientError) as info:
        aas.put_scheduled_action(ServiceNamespace="sagemaker", ScheduledActionName="bad", ResourceId=resource,
                                 ScalableDimension=INSTANCES, Schedule="every day")
    assert info.value.response["Error"]["Code"] == "ValidationException"
