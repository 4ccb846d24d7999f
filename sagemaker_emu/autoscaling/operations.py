"""Application Auto Scaling's operations: the dispatch table (name -> function of the region
and the validated input), over one `AutoScaling` backend."""

from __future__ import annotations

from typing import Callable

from sagemaker_emu import arns
from sagemaker_emu.autoscaling.backend import AutoScaling, Policy, Target
from sagemaker_emu.errors import ServiceError
from sagemaker_emu.paging import page

SAGEMAKER = "sagemaker"
DIMENSIONS = ("sagemaker:variant:DesiredInstanceCount", "sagemaker:variant:DesiredProvisionedConcurrency",
              "sagemaker:inference-component:DesiredCopyCount")
PAGE = 50


def _key(p: dict) -> tuple[str, str, str]:
    if p["ServiceNamespace"] != SAGEMAKER or p["ScalableDimension"] not in DIMENSIONS:
        raise ServiceError("ValidationException", f"sagemaker-emu scales SageMaker only: service namespace "
                           f"{SAGEMAKER} with scalable dimension {', '.join(DIMENSIONS)}.")
    return (p["ServiceNamespace"], p["ResourceId"], p["ScalableDimension"])


def _page(items: list, member: str, p: dict) -> dict:
    return page(items, member, p.get("NextToken"), p.get("MaxResults", PAGE))


def _matches(spec: dict, p: dict, ids_member: str = "ResourceIds") -> bool:
    if spec["ServiceNamespace"] != p["ServiceNamespace"]:
        return False
    if "ScalableDimension" in p and spec["ScalableDimension"] != p["ScalableDimension"]:
        return False
    if ids_member in p and spec["ResourceId"] not in p[ids_member]:
        return False
    return "ResourceId" not in p or spec["ResourceId"] == p["ResourceId"]


def _service_role(target_arn: str) -> str:
    """The service-linked role Application Auto Scaling uses for SageMaker, in the target's
    account and partition."""
    found = arns.parse(target_arn)
    assert found is not None
    return arns.global_arn("iam", found.region, found.account, "role/aws-service-role/sagemaker.application-autoscaling."
                           "amazonaws.com/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint")


def _target_view(t: Target) -> dict:
    return {**{k: t.spec[k] for k in ("ServiceNamespace", "ResourceId", "ScalableDimension", "MinCapacity",
                                      "MaxCapacity")},
            "RoleARN": t.spec.get("RoleARN", _service_role(t.arn)),
            "CreationTime": t.created, "ScalableTargetARN": t.arn,
            "SuspendedState": t.spec.get("SuspendedState", {"DynamicScalingInSuspended": False,
                                                            "DynamicScalingOutSuspended": False,
                                                            "ScheduledScalingSuspended": False})}


def _policy_view(p: Policy) -> dict:
    return {**p.spec, "PolicyARN": p.arn, "Alarms": p.alarms, "CreationTime": p.created}


def operations(aas: AutoScaling) -> dict[str, Callable[[str, dict], dict]]:
    def register_scalable_target(region: str, p: dict) -> dict:
        _key(p)
        return {"ScalableTargetARN": aas.register(region, {k: v for k, v in p.items() if k != "Tags"}, p.get("Tags"))}

    def deregister_scalable_target(region: str, p: dict) -> dict:
        aas.deregister(region, _key(p))
        return {}

    def describe_scalable_targets(region: str, p: dict) -> dict:
        found = [_target_view(t) for t in aas.targets(region) if _matches(t.spec, p)]
        return _page(found, "ScalableTargets", p)

    def put_scaling_policy(region: str, p: dict) -> dict:
        _key(p)
        policy = aas.put_policy(region, p)
        return {"PolicyARN": policy.arn, "Alarms": policy.alarms}

    def describe_scaling_policies(region: str, p: dict) -> dict:
        found = [_policy_view(x) for x in aas.policies(region)
                 if _matches(x.spec, p) and ("PolicyNames" not in p or x.spec["PolicyName"] in p["PolicyNames"])]
        return _page(found, "ScalingPolicies", p)

    def delete_scaling_policy(region: str, p: dict) -> dict:
        aas.delete_policy(region, p["PolicyName"], _key(p))
        return {}

    def describe_scaling_activities(region: str, p: dict) -> dict:
        found = sorted((a for a in aas.activities(region) if _matches(a, p)), key=lambda a: -a["StartTime"])
        return _page(found, "ScalingActivities", p)

    def put_scheduled_action(region: str, p: dict) -> dict:
        _key(p)
        aas.put_scheduled(region, p)
        return {}

    def describe_scheduled_actions(region: str, p: dict) -> dict:
        found = [a for a in aas.scheduled(region) if _matches(a, p)
                 and ("ScheduledActionNames" not in p or a["ScheduledActionName"] in p["ScheduledActionNames"])]
        return _page(found, "ScheduledActions", p)

    def delete_scheduled_action(region: str, p: dict) -> dict:
        aas.delete_scheduled(region, p["ScheduledActionName"], _key(p))
        return {}

    def list_tags_for_resource(region: str, p: dict) -> dict:
        return {"Tags": aas.tagging(region, p["ResourceARN"], {})}

    def tag_resource(region: str, p: dict) -> dict:
        aas.tagging(region, p["ResourceARN"], p["Tags"])
        return {}

    def untag_resource(region: str, p: dict) -> dict:
        aas.tagging(region, p["ResourceARN"], {}, p["TagKeys"])
        return {}

    return {"ListTagsForResource": list_tags_for_resource, "TagResource": tag_resource, "UntagResource": untag_resource,
            "RegisterScalableTarget": register_scalable_target, "DeregisterScalableTarget": deregister_scalable_target,
            "DescribeScalableTargets": describe_scalable_targets, "PutScalingPolicy": put_scaling_policy,
            "DescribeScalingPolicies": describe_scaling_policies, "DeleteScalingPolicy": delete_scaling_policy,
            "DescribeScalingActivities": describe_scaling_activities, "PutScheduledAction": put_scheduled_action,
            "DescribeScheduledActions": describe_scheduled_actions, "DeleteScheduledAction": delete_scheduled_action}
