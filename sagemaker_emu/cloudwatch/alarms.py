"""A metric alarm and how it decides its state, as CloudWatch documents it: the last
`EvaluationPeriods` periods, `DatapointsToAlarm` of them breaching for ALARM, and missing
periods treated as `TreatMissingData` says."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any, Mapping

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"
_COMPARE = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
COMPARISONS = tuple(_COMPARE)


@dataclass(frozen=True)
class AlarmAction:
    """An alarm's action is due (sagemaker_emu/events.py): `arn` names what to run (an
    Application Auto Scaling policy, an SNS topic), for the alarm as it now is, in `state`.
    Each subscriber runs the actions of its own service and ignores the others."""

    arn: str
    alarm: "Alarm"
    state: str


@dataclass
class Alarm:
    name: str
    arn: str
    region: str
    spec: dict[str, Any]  # PutMetricAlarm's input, as given
    configured: float
    state: str = INSUFFICIENT
    reason: str = "Unchecked: Initial alarm creation"
    reason_data: str | None = None
    state_updated: float = 0.0
    transitioned: float = 0.0
    next_evaluation: float = 0.0  # on the evaluator's monotonic clock
    previous: str = INSUFFICIENT  # the state before the last change, for notifications

    @property
    def actions_enabled(self) -> bool:
        return self.spec.get("ActionsEnabled", True)

    def actions(self, state: str) -> list[str]:
        member = {ALARM: "AlarmActions", OK: "OKActions", INSUFFICIENT: "InsufficientDataActions"}[state]
        return list(self.spec.get(member, []))

    def describe(self) -> dict[str, Any]:
        out = {k: v for k, v in self.spec.items() if k not in ("Tags",)}
        out.update(AlarmName=self.name, AlarmArn=self.arn, AlarmConfigurationUpdatedTimestamp=self.configured,
                   ActionsEnabled=self.actions_enabled, StateValue=self.state, StateReason=self.reason,
                   StateUpdatedTimestamp=self.state_updated, StateTransitionedTimestamp=self.transitioned,
                   OKActions=self.actions(OK), AlarmActions=self.actions(ALARM),
                   InsufficientDataActions=self.actions(INSUFFICIENT))
        if self.reason_data is not None:
            out["StateReasonData"] = self.reason_data
        return out


def _stamp(when: float) -> str:
    """CloudWatch's notification time format: 2026-12-03T02:15:13.123+0000."""
    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def notification(alarm: Alarm, account: str, region_name: str) -> tuple[str, dict[str, Any]]:
    """The subject and message CloudWatch publishes to an SNS action for the alarm's state."""
    spec = alarm.spec
    trigger: dict[str, Any] = {k: spec[k] for k in ("Period", "EvaluationPeriods", "DatapointsToAlarm",
                                                     "ComparisonOperator", "Threshold") if k in spec}
    trigger["TreatMissingData"] = spec.get("TreatMissingData", "missing")
    trigger["EvaluateLowSampleCountPercentile"] = spec.get("EvaluateLowSampleCountPercentile", "")
    if "Metrics" in spec:
        trigger["Metrics"] = spec["Metrics"]
    else:
        extended = "ExtendedStatistic" in spec
        trigger.update(MetricName=spec.get("MetricName"), Namespace=spec.get("Namespace"),
                       StatisticType="ExtendedStatistic" if extended else "Statistic",
                       Statistic=spec["ExtendedStatistic"] if extended else spec.get("Statistic", "").upper(),
                       Unit=spec.get("Unit"),
                       Dimensions=[{"value": d["Value"], "name": d["Name"]} for d in spec.get("Dimensions", [])])
    message = {
        "AlarmName": alarm.name, "AlarmDescription": spec.get("AlarmDescription"), "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": _stamp(alarm.configured), "NewStateValue": alarm.state,
        "NewStateReason": alarm.reason, "StateChangeTime": _stamp(alarm.state_updated), "Region": region_name,
        "AlarmArn": alarm.arn, "OldStateValue": alarm.previous, "OKActions": alarm.actions(OK),
        "AlarmActions": alarm.actions(ALARM), "InsufficientDataActions": alarm.actions(INSUFFICIENT),
        "Trigger": trigger,
    }
    return f'{alarm.state}: "{alarm.name}" in {region_name}'[:100], message


def decide(alarm: Alarm, values: list[float | None]) -> tuple[str, str, str]:
    """The state for the last periods' values (newest first; None: no data), with the reason
    and reason data CloudWatch gives."""
    spec = alarm.spec
    periods = spec["EvaluationPeriods"]
    needed = spec.get("DatapointsToAlarm", periods)
    threshold = spec.get("Threshold", 0.0)
    breaches = _COMPARE[spec["ComparisonOperator"]]
    treat = spec.get("TreatMissingData", "missing")
    present = [v for v in values if v is not None]
    if not present and treat in ("missing", "ignore"):
        state = INSUFFICIENT if treat == "missing" else alarm.state
        return state, "Insufficient Data: no datapoints were received for the evaluation periods.", _data(values, threshold)
    breaching = sum(1 for v in values if (v is None and treat == "breaching") or (v is not None and breaches(v, threshold)))
    shown = ", ".join(f"{v:g}" for v in present[:needed]) or "none"
    if breaching >= needed:
        return (ALARM, f"Threshold Crossed: {breaching} out of the last {periods} datapoints [{shown}] were "
                f"{_words(spec['ComparisonOperator'])} the threshold ({threshold:g}).", _data(values, threshold))
    return (OK, f"Threshold Crossed: {periods - breaching} out of the last {periods} datapoints [{shown}] were not "
            f"{_words(spec['ComparisonOperator'])} the threshold ({threshold:g}).", _data(values, threshold))


def _words(comparison: str) -> str:
    return {"GreaterThanOrEqualToThreshold": "greater than or equal to", "GreaterThanThreshold": "greater than",
            "LessThanThreshold": "less than", "LessThanOrEqualToThreshold": "less than or equal to"}[comparison]


def _data(values: list[float | None], threshold: float) -> str:
    return json.dumps({"version": "1.0", "recentDatapoints": [v for v in values if v is not None],
                       "threshold": threshold})


def matches_metric(alarm: Alarm, params: Mapping[str, Any]) -> bool:
    """DescribeAlarmsForMetric's filter."""
    spec = alarm.spec
    if spec.get("MetricName") != params["MetricName"] or spec.get("Namespace") != params["Namespace"]:
        return False
    for member in ("Statistic", "ExtendedStatistic", "Period", "Unit"):
        if member in params and spec.get(member) != params[member]:
            return False
    if "Dimensions" in params:
        key = lambda ds: sorted((d["Name"], d["Value"]) for d in ds)  # noqa: E731
        return key(spec.get("Dimensions", [])) == key(params["Dimensions"])
    return True
