"""Application Auto Scaling's state, moto-style: the only code that changes it.

Target tracking creates the two alarms AWS creates (AlarmHigh: 3 periods above the target;
AlarmLow: 15 periods below 90% of it), in CloudWatch, with the policy as their action. When an
alarm runs a policy, the new capacity is computed as AWS documents it (target tracking:
current x metric / target, rounded up; step scaling: the step the breach falls in), bounded by
the target's Min/MaxCapacity, held back by cooldowns on the emulator's clock, and set through
`Capacity.set` (UpdateEndpointWeightsAndCapacities / UpdateInferenceComponentRuntimeConfig).
Each attempt is an activity with its cause.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

from sagemaker_emu import arns
from sagemaker_emu.autoscaling import cron
from sagemaker_emu.clock import Clock
from sagemaker_emu.cloudwatch.alarms import ALARM, Alarm, AlarmAction
from sagemaker_emu.cloudwatch.backend import CloudWatch
from sagemaker_emu.errors import EmuError, ServiceError

log = logging.getLogger("sagemaker_emu.autoscaling")

DEFAULT_COOLDOWN_S = 300  # SageMaker's default scale-out and scale-in cooldowns
MAX_ACTIVITIES = 1000  # per scalable target; older ones are forgotten
HIGH_PERIODS, LOW_PERIODS, LOW_SHARE = 3, 15, 0.9
SCHEDULE_TICK_S = 0.2

# Predefined metric -> (metric name, statistic, period, dimensions kind)
PREDEFINED = {
    "SageMakerVariantInvocationsPerInstance": ("InvocationsPerInstance", "Sum", 60, "variant"),
    "SageMakerVariantProvisionedConcurrencyUtilization": ("ServerlessProvisionedConcurrencyUtilization", "Average", 60,
                                                          "variant"),
    "SageMakerVariantConcurrentRequestsPerModelHighResolution": ("ConcurrentRequestsPerModel", "Average", 10, "variant"),
    "SageMakerInferenceComponentInvocationsPerCopy": ("InvocationsPerCopy", "Sum", 60, "component"),
    "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution": ("ConcurrentRequestsPerCopy", "Average", 10,
                                                                           "component"),
}


class Capacity(Protocol):
    """What scaling needs of SageMaker (control/capacity.py implements it)."""

    def current(self, region: str, resource_id: str, dimension: str) -> int: ...

    def set(self, region: str, resource_id: str, dimension: str, value: int) -> bool:
        """Ask for `value`; False (nothing done) while the resource is changing."""


@dataclass
class Target:
    spec: dict[str, Any]
    arn: str
    created: float
    last_scale_out: float = -math.inf  # on the monotonic clock
    last_scale_in: float = -math.inf
    activities: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.spec["ServiceNamespace"], self.spec["ResourceId"], self.spec["ScalableDimension"])


@dataclass
class Policy:
    spec: dict[str, Any]
    arn: str
    created: float
    alarms: list[dict[str, str]] = field(default_factory=list)


class AutoScaling:
    def __init__(self, account: str, clock: Clock, cloudwatch: CloudWatch, capacity: Capacity) -> None:
        self.account = account
        self.clock = clock
        self.cloudwatch = cloudwatch
        self.capacity = capacity
        self._targets: dict[str, dict[tuple, Target]] = {}  # region -> key -> target
        self._policies: dict[str, dict[str, Policy]] = {}  # region -> policy ARN -> policy
        self._scheduled: dict[str, dict[tuple, dict]] = {}  # region -> (name, key) -> action
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None

    # ------------------------------------------------------------ targets

    def register(self, region: str, spec: dict[str, Any], tags: dict[str, str] | None = None) -> str:
        """Register a scalable target, or update one (`tags` apply when it is created, as on AWS)."""
        key = (spec["ServiceNamespace"], spec["ResourceId"], spec["ScalableDimension"])
        with self._lock:
            targets = self._targets.setdefault(region, {})
            target = targets.get(key)
            merged = {**(target.spec if target else {}), **spec}  # an update changes only what it names
            if "MinCapacity" not in merged or "MaxCapacity" not in merged:
                raise ServiceError("ValidationException", "MinCapacity and MaxCapacity are required to register a "
                                   "new scalable target.")
            if merged["MinCapacity"] > merged["MaxCapacity"]:
                raise ServiceError("ValidationException", "Maximum capacity cannot be less than minimum capacity")
            if target is None:
                self.capacity.current(region, spec["ResourceId"], spec["ScalableDimension"])  # it must exist
                arn = arns.arn("application-autoscaling", region, self.account, f"scalable-target/{uuid.uuid4().hex[:28]}")
                target = targets[key] = Target(merged, arn, self.clock.now(), tags=dict(tags or {}))
            else:
                target.spec = merged
            return target.arn

    def tagging(self, region: str, arn: str, add: dict[str, str], remove: Iterable[str] = ()) -> dict[str, str]:
        """A scalable target's tags, after adding `add` and removing `remove`."""
        with self._lock:
            target = next((t for t in self._targets.get(region, {}).values() if t.arn == arn), None)
            if target is None:
                raise ServiceError("ResourceNotFoundException", f"No scalable target found for ARN {arn}")
            target.tags.update(add)
            for key in remove:
                target.tags.pop(key, None)
            return dict(target.tags)

    def target(self, region: str, key: tuple) -> Target:
        target = self._targets.get(region, {}).get(key)
        if target is None:
            raise ServiceError("ObjectNotFoundException", f"No scalable target registered for service namespace: "
                               f"{key[0]}, resource ID: {key[1]}, scalable dimension: {key[2]}")
        return target

    def targets(self, region: str) -> list[Target]:
        with self._lock:
            return list(self._targets.get(region, {}).values())

    def deregister(self, region: str, key: tuple) -> None:
        with self._lock:
            self.target(region, key)
            for policy in [p for p in self.policies(region) if _key(p.spec) == key]:
                self.delete_policy(region, policy.spec["PolicyName"], key)
            del self._targets[region][key]

    # ------------------------------------------------------------ policies

    def put_policy(self, region: str, spec: dict[str, Any]) -> Policy:
        key = _key(spec)
        with self._lock:
            self.target(region, key)
            policies = self._policies.setdefault(region, {})
            old = next((p for p in policies.values() if p.spec["PolicyName"] == spec["PolicyName"] and _key(p.spec) == key), None)
            kind = spec.get("PolicyType", "StepScaling")
            if kind == "TargetTrackingScaling" and "TargetTrackingScalingPolicyConfiguration" not in spec:
                raise ServiceError("ValidationException", "TargetTrackingScalingPolicyConfiguration is required for "
                                   "a policy of type TargetTrackingScaling.")
            if kind == "StepScaling" and "StepScalingPolicyConfiguration" not in spec:
                raise ServiceError("ValidationException", "StepScalingPolicyConfiguration is required for a policy "
                                   "of type StepScaling.")
            if kind == "PredictiveScaling":
                raise ServiceError("ValidationException", "sagemaker-emu does not run predictive scaling policies.")
            arn = old.arn if old else arns.arn("autoscaling", region, self.account, (
                f"scalingPolicy:{uuid.uuid4()}:resource/{key[0]}/{key[1]}:policyName/{spec['PolicyName']}"))
            if old is not None:
                self._drop_alarms(region, old)
            policy = policies[arn] = Policy({**spec, "PolicyType": kind}, arn, self.clock.now())
        if kind == "TargetTrackingScaling":
            policy.alarms = self._target_tracking_alarms(region, policy)
        return policy

    def policies(self, region: str) -> list[Policy]:
        with self._lock:
            return list(self._policies.get(region, {}).values())

    def delete_policy(self, region: str, name: str, key: tuple) -> None:
        with self._lock:
            policies = self._policies.get(region, {})
            policy = next((p for p in policies.values() if p.spec["PolicyName"] == name and _key(p.spec) == key), None)
            if policy is None:
                raise ServiceError("ObjectNotFoundException", f"No scaling policy found for service namespace: "
                                   f"{key[0]}, resource ID: {key[1]}, scalable dimension: {key[2]}, policy name: {name}")
            del policies[policy.arn]
        self._drop_alarms(region, policy)

    def _drop_alarms(self, region: str, policy: Policy) -> None:
        names = [a["AlarmName"] for a in policy.alarms]
        existing = {a.name for a in self.cloudwatch.alarms(region)}
        if [n for n in names if n in existing]:
            self.cloudwatch.delete_alarms(region, [n for n in names if n in existing])

    def _target_tracking_alarms(self, region: str, policy: Policy) -> list[dict[str, str]]:
        spec, config = policy.spec, policy.spec["TargetTrackingScalingPolicyConfiguration"]
        metric = _metric(spec["ResourceId"], config)
        target_value = float(config["TargetValue"])
        base = f"TargetTracking-{spec['ResourceId']}"
        alarms = []
        plans = [("AlarmHigh", HIGH_PERIODS, "GreaterThanThreshold", target_value)]
        if not config.get("DisableScaleIn"):
            plans.append(("AlarmLow", LOW_PERIODS, "LessThanThreshold", target_value * LOW_SHARE))
        for suffix, periods, comparison, threshold in plans:
            name = f"{base}-{suffix}-{uuid.uuid4()}"
            self.cloudwatch.put_alarm(region, {
                "AlarmName": name, "AlarmDescription": f"DO NOT EDIT OR DELETE. For TargetTrackingScaling policy "
                f"{policy.arn}.", "ActionsEnabled": True, "AlarmActions": [policy.arn], "OKActions": [],
                "InsufficientDataActions": [], **metric, "EvaluationPeriods": periods,
                "DatapointsToAlarm": periods, "Threshold": threshold, "ComparisonOperator": comparison,
                "TreatMissingData": "missing"})
            alarms.append({"AlarmName": name,
                           "AlarmARN": arns.arn("cloudwatch", region, self.account, f"alarm:{name}")})
        return alarms

    # ------------------------------------------------------------ running a policy

    def run_action(self, action: AlarmAction) -> None:
        """An alarm's action that names one of the policies (others are not ours)."""
        arn, alarm, state = action.arn, action.alarm, action.state
        policy = self._policies.get(alarm.region, {}).get(arn)
        if policy is None or state != ALARM:
            return
        spec = policy.spec
        key = _key(spec)
        with self._lock:
            target = self._targets.get(alarm.region, {}).get(key)
        if target is None:
            return
        value = _latest(alarm)
        if value is None:
            return
        current = self.capacity.current(alarm.region, key[1], key[2])
        if spec["PolicyType"] == "TargetTrackingScaling":
            wanted, cooldown_out, cooldown_in = self._tracked(policy, alarm, current, value)
        else:
            wanted, cooldown_out, cooldown_in = self._stepped(policy, alarm, current, value)
        if wanted is None:
            return
        low, high = target.spec["MinCapacity"], target.spec["MaxCapacity"]
        wanted = max(low, min(high, wanted))
        if wanted == current:
            return
        suspended = target.spec.get("SuspendedState") or {}
        out = wanted > current
        if suspended.get("DynamicScalingOutSuspended" if out else "DynamicScalingInSuspended"):
            return
        now = time.monotonic()
        if out and now - target.last_scale_out < self.clock.wall(cooldown_out):
            return
        if not out and now - max(target.last_scale_in, target.last_scale_out) < self.clock.wall(cooldown_in):
            return
        cause = (f"monitor alarm {alarm.name} in state {ALARM} triggered policy {spec['PolicyName']}")
        self.scale(alarm.region, target, wanted, current, cause)

    def _tracked(self, policy: Policy, alarm: Alarm, current: int, value: float) -> tuple[int | None, float, float]:
        config = policy.spec["TargetTrackingScalingPolicyConfiguration"]
        target_value = float(config["TargetValue"])
        high = f"{policy.spec['ResourceId']}-AlarmHigh-" in alarm.name
        if current == 0:
            wanted = 1 if high else 0
        else:
            wanted = math.ceil(current * value / target_value) if target_value > 0 else current
        if high:
            wanted = max(wanted, current + 1)
        elif config.get("DisableScaleIn"):
            return None, 0, 0
        elif wanted >= current:  # AlarmLow, yet the formula asks for no fewer: nothing to do
            return None, 0, 0
        return (wanted, config.get("ScaleOutCooldown", DEFAULT_COOLDOWN_S),
                config.get("ScaleInCooldown", DEFAULT_COOLDOWN_S))

    def _stepped(self, policy: Policy, alarm: Alarm, current: int, value: float) -> tuple[int | None, float, float]:
        config = policy.spec["StepScalingPolicyConfiguration"]
        breach = value - float(alarm.spec.get("Threshold", 0.0))
        # A step without a bound is open on that side, as AWS documents.
        step = next((s for s in config.get("StepAdjustments", [])
                     if s.get("MetricIntervalLowerBound", -math.inf) <= breach < s.get("MetricIntervalUpperBound", math.inf)),
                    None)
        if step is None:
            return None, 0, 0
        adjustment, kind = step["ScalingAdjustment"], config.get("AdjustmentType", "ChangeInCapacity")
        if kind == "ExactCapacity":
            wanted = adjustment
        elif kind == "PercentChangeInCapacity":
            change = current * adjustment / 100
            change = math.ceil(change) if change > 0 else math.floor(change)
            minimum = config.get("MinAdjustmentMagnitude")
            if minimum and abs(change) < minimum:
                change = minimum if adjustment > 0 else -minimum
            wanted = current + change
        else:
            wanted = current + adjustment
        cooldown = config.get("Cooldown", DEFAULT_COOLDOWN_S)
        return wanted, cooldown, cooldown

    def scale(self, region: str, target: Target, wanted: int, current: int, cause: str) -> None:
        key = target.key
        activity = {"ActivityId": str(uuid.uuid4()), "ServiceNamespace": key[0], "ResourceId": key[1],
                    "ScalableDimension": key[2], "Cause": cause, "StartTime": self.clock.now(),
                    "Description": f"Setting desired {_what(key[2])} to {wanted}.",
                    "Details": json.dumps({"from": current, "to": wanted})}
        try:
            if not self.capacity.set(region, key[1], key[2], wanted):
                return  # the resource is changing: the alarm runs the policy again next period
        except EmuError as exc:
            activity.update(StatusCode="Failed", StatusMessage=exc.message)
        else:
            activity.update(StatusCode="Successful", StatusMessage=f"Successfully set desired {_what(key[2])} to "
                            f"{wanted}. Change successfully fulfilled by {key[0]}.")
            if wanted > current:
                target.last_scale_out = time.monotonic()
            else:
                target.last_scale_in = time.monotonic()
        activity["EndTime"] = self.clock.now()
        log.info("scaling %s %s from %d to %d: %s", key[1], key[2], current, wanted, activity["StatusCode"])
        with self._lock:
            target.activities.insert(0, activity)
            del target.activities[MAX_ACTIVITIES:]

    def activities(self, region: str) -> list[dict[str, Any]]:
        with self._lock:
            return [a for t in self._targets.get(region, {}).values() for a in t.activities]

    # ------------------------------------------------------------ scheduled actions

    def put_scheduled(self, region: str, spec: dict[str, Any]) -> None:
        key = _key(spec)
        when = _schedule(spec["Schedule"], spec.get("Timezone"))
        with self._lock:
            self.target(region, key)
            self._scheduled.setdefault(region, {})[(spec["ScheduledActionName"], key)] = {
                **spec, "ScheduledActionARN": arns.arn("autoscaling", region, self.account, (
                    f"scheduledAction:{uuid.uuid4()}:resource/{key[0]}/{key[1]}:"
                    f"scheduledActionName/{spec['ScheduledActionName']}")),
                "CreationTime": self.clock.now(), "_when": when, "_next": None}
        self._ensure_scheduler()

    def _ensure_scheduler(self) -> None:
        with self._lock:
            if self._scheduler is None:
                self._scheduler = threading.Thread(target=self._run_schedules, daemon=True, name="scheduled-actions")
                self._scheduler.start()

    def _run_schedules(self) -> None:
        while not self._stop.wait(SCHEDULE_TICK_S):
            now, tick = self.clock.now(), time.monotonic()
            with self._lock:
                due = []
                for region, actions in self._scheduled.items():
                    for action in actions.values():
                        kind, value = action["_when"]
                        if action.get("StartTime", -math.inf) > now or action.get("EndTime", math.inf) < now:
                            continue
                        if kind == "at" and value <= now and action["_next"] is None:
                            action["_next"] = math.inf  # once
                            due.append((region, action))
                        elif kind == "rate" and (action["_next"] is None or tick >= action["_next"]):
                            if action["_next"] is not None:
                                due.append((region, action))
                            action["_next"] = tick + self.clock.wall(value)
                        elif kind == "cron" and (action["_next"] is None or now >= action["_next"]):
                            if action["_next"] is not None:  # cron runs on wall time, as its fields name it
                                due.append((region, action))
                            action["_next"] = value.next_after(now) or math.inf
            for region, action in due:
                self._apply_scheduled(region, action)

    def _apply_scheduled(self, region: str, action: dict[str, Any]) -> None:
        """Set the target's bounds; a capacity outside them moves to the nearest bound, as on AWS."""
        key = _key(action)
        with self._lock:
            target = self._targets.get(region, {}).get(key)
            if target is None or (target.spec.get("SuspendedState") or {}).get("ScheduledScalingSuspended"):
                return
            bounds = action.get("ScalableTargetAction", {})
            target.spec.update({k: bounds[k] for k in ("MinCapacity", "MaxCapacity") if k in bounds})
        current = self.capacity.current(region, key[1], key[2])
        wanted = max(target.spec["MinCapacity"], min(target.spec["MaxCapacity"], current))
        if wanted != current:
            self.scale(region, target, wanted, current,
                       f"scheduled action name {action['ScheduledActionName']} was triggered")

    def scheduled(self, region: str) -> list[dict[str, Any]]:
        with self._lock:
            return [{k: v for k, v in a.items() if not k.startswith("_")}
                    for a in self._scheduled.get(region, {}).values()]

    def delete_scheduled(self, region: str, name: str, key: tuple) -> None:
        with self._lock:
            if self._scheduled.get(region, {}).pop((name, key), None) is None:
                raise ServiceError("ObjectNotFoundException", f"No scheduled action found for service namespace: "
                                   f"{key[0]}, resource ID: {key[1]}, scalable dimension: {key[2]}, scheduled action "
                                   f"name: {name}")

    def stop(self) -> None:
        self._stop.set()

    def reset(self) -> None:
        with self._lock:
            self._targets.clear()
            self._policies.clear()
            self._scheduled.clear()


def _schedule(text: str, zone: str | None = None) -> tuple[str, Any]:
    """`at(2026-12-02T10:00:00)` -> ("at", epoch seconds); `rate(5 minutes)` -> ("rate", 300);
    `cron(0 9 ? * MON-FRI *)` -> ("cron", cron.Cron). `at` and `cron` read their time in `zone`
    (an IANA name; UTC without one)."""
    inner = text[text.find("(") + 1:text.rfind(")")].strip()
    if text.startswith("cron("):
        try:
            return "cron", cron.parse(inner, zone)
        except ValueError as exc:
            raise ServiceError("ValidationException", f"Invalid schedule {text}: {exc}") from None
    if text.startswith("at("):
        try:
            local = datetime.datetime.fromisoformat(inner)
            return "at", local.replace(tzinfo=cron.time_zone(zone)).timestamp()
        except ValueError:
            raise ServiceError("ValidationException", f"Invalid schedule {text}") from None
    if text.startswith("rate("):
        amount, _, unit = inner.partition(" ")
        seconds = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}.get(unit)
        if not amount.isdigit() or seconds is None or int(amount) < 1:
            raise ServiceError("ValidationException", f"Invalid schedule {text}")
        return "rate", int(amount) * seconds
    raise ServiceError("ValidationException", f"Invalid schedule {text}: use at(...), rate(...) or cron(...).")


def _key(spec: dict[str, Any]) -> tuple[str, str, str]:
    return (spec["ServiceNamespace"], spec["ResourceId"], spec["ScalableDimension"])


def _what(dimension: str) -> str:
    return {"sagemaker:variant:DesiredInstanceCount": "instance count",
            "sagemaker:variant:DesiredProvisionedConcurrency": "provisioned concurrency",
            "sagemaker:inference-component:DesiredCopyCount": "copy count"}.get(dimension, "capacity")


def _latest(alarm: Alarm) -> float | None:
    try:
        points = json.loads(alarm.reason_data or "{}").get("recentDatapoints", [])
    except ValueError:
        return None
    return points[0] if points else None


def _metric(resource_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """The alarm's metric members for a target-tracking configuration."""
    if "PredefinedMetricSpecification" in config:
        kind = config["PredefinedMetricSpecification"]["PredefinedMetricType"]
        if kind not in PREDEFINED:
            raise ServiceError("ValidationException", f"Predefined metric type {kind} is not valid for "
                               "SageMaker scalable targets.")
        name, statistic, period, dims = PREDEFINED[kind]
        parts = resource_id.split("/")
        if dims == "variant":
            if parts[0] != "endpoint":
                raise ServiceError("ValidationException", f"{kind} applies to endpoint variants, not {resource_id}.")
            dimensions = [{"Name": "EndpointName", "Value": parts[1]}, {"Name": "VariantName", "Value": parts[3]}]
        else:
            if parts[0] != "inference-component":
                raise ServiceError("ValidationException", f"{kind} applies to inference components, not {resource_id}.")
            dimensions = [{"Name": "InferenceComponentName", "Value": parts[1]}]
        return {"Namespace": "AWS/SageMaker", "MetricName": name, "Statistic": statistic, "Period": period,
                "Dimensions": dimensions}
    custom = config.get("CustomizedMetricSpecification")
    if custom is None:
        raise ServiceError("ValidationException", "Either PredefinedMetricSpecification or "
                           "CustomizedMetricSpecification must be specified.")
    if "Metrics" in custom:  # metric math: each metric is read per minute, as AWS's alarms do
        return {"Metrics": [{**q, "MetricStat": {**q["MetricStat"], "Period": 60}} if "MetricStat" in q else q
                            for q in custom["Metrics"]]}
    return {"Namespace": custom["Namespace"], "MetricName": custom["MetricName"],
            "Statistic": custom.get("Statistic", "Average"), "Period": 60,
            "Dimensions": custom.get("Dimensions", []), **({"Unit": custom["Unit"]} if "Unit" in custom else {})}
