"""CloudWatch's operations: the dispatch table `OPERATIONS` (name -> function of the region and
the validated input), over one `CloudWatch` backend."""

from __future__ import annotations

import math
from typing import Any, Callable

from sagemaker_emu.cloudwatch import queries, sketch
from sagemaker_emu.cloudwatch.alarms import COMPARISONS, matches_metric
from sagemaker_emu.cloudwatch.backend import CloudWatch
from sagemaker_emu.cloudwatch.series import dimensions, statistic
from sagemaker_emu.errors import ServiceError
from sagemaker_emu.paging import page

PAGE = 500  # ListMetrics' page, as AWS's
MAX_DATAPOINTS = 1440  # GetMetricStatistics answers at most this many, as AWS's


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterValueException", message)


def _combination(message: str) -> ServiceError:
    return ServiceError("InvalidParameterCombinationException", message)


def _check_queries(specs: list[dict]) -> None:
    """Each query of GetMetricData or a metric-math alarm: a MetricStat with a statistic we
    answer, or an Expression."""
    for q in specs:
        if ("MetricStat" in q) == ("Expression" in q):
            raise _combination(f"Exactly one of MetricStat and Expression must be set in query {q['Id']}.")
        if "MetricStat" in q:
            queries.check_statistic(q["MetricStat"]["Stat"])


def operations(cw: CloudWatch) -> dict[str, Callable[[str, dict], dict]]:
    def put_metric_data(region: str, p: dict) -> dict:
        namespace = p["Namespace"]
        if namespace.startswith("AWS/"):
            raise _invalid(f"The value {namespace} for parameter Namespace is invalid.")
        store, now = cw.store(region), cw.clock.now()
        points = []
        for datum in p.get("MetricData", []):
            key = (namespace, datum["MetricName"], dimensions(datum.get("Dimensions", [])))
            unit, when = datum.get("Unit", "None"), datum.get("Timestamp", now)
            if "StatisticValues" in datum:
                s = datum["StatisticValues"]
                store.put_statistics(key, unit, when, s["Sum"], s["SampleCount"], s["Minimum"], s["Maximum"])
            elif "Values" in datum:
                counts = datum.get("Counts") or [1.0] * len(datum["Values"])
                if len(counts) != len(datum["Values"]):
                    raise _combination("The parameters MetricData.member.Values and MetricData.member.Counts "
                                       "must be of the same size.")
                for value, count in zip(datum["Values"], counts):
                    store.put_statistics(key, unit, when, value * count, count, value, value,
                                         {sketch.bin_of(value): count})
            elif "Value" in datum:
                points.append((key, datum["Value"], unit, when))
            else:
                raise ServiceError("MissingRequiredParameterException",
                                   "One of the parameters Value, Values or StatisticValues must be specified.")
        store.put(points)
        return {}

    def get_metric_statistics(region: str, p: dict) -> dict:
        stats = p.get("Statistics", [])
        if not stats and not p.get("ExtendedStatistics"):
            raise ServiceError("MissingRequiredParameterException",
                               "Must specify either the Statistics or the ExtendedStatistics parameter.")
        period, end = p["Period"], p["EndTime"]
        start = p["StartTime"] // period * period  # datapoints fall on period boundaries, as AWS aligns them
        if end <= start:
            raise _invalid("The parameter StartTime must be less than the parameter EndTime.")
        if (end - start) / period > MAX_DATAPOINTS:
            raise _combination(f"You have requested up to {math.ceil((end - start) / period)} datapoints, which "
                               f"exceeds the limit of {MAX_DATAPOINTS}. You may reduce the datapoints requested by "
                               "increasing Period, or decreasing the time range.")
        extended = {name: queries.check_statistic(name) for name in p.get("ExtendedStatistics", [])}
        if None in extended.values():
            raise _invalid("ExtendedStatistics takes percentiles (such as p99); Statistics takes "
                           f"{', '.join(queries.STATISTICS)}.")
        store = cw.reading(region)
        key = queries.metric_key(p)
        unit = p.get("Unit") or store.unit(key) or "None"
        if p.get("Unit") and store.unit(key) not in (None, p["Unit"]):
            return {"Label": p["MetricName"], "Datapoints": []}
        bins = store.percentile_bins(key, start, end, period) if extended else {}
        datapoints = []
        for when, agg in store.aggregate(key, start, end, period):
            point: dict[str, Any] = {"Timestamp": when, "Unit": unit}
            for stat in stats:
                point[stat] = statistic(stat, agg)
            if bins.get(when):  # single values were sent in this period: percentiles exist
                low, high = agg[2], agg[3]
                assert low is not None and high is not None  # a period with values has its minimum and maximum
                point["ExtendedStatistics"] = {name: sketch.percentile(bins[when], value, low, high)
                                               for name, value in extended.items() if value is not None}
            if len(point) > 2:
                datapoints.append(point)
        return {"Label": p["MetricName"], "Datapoints": datapoints}

    def get_metric_data(region: str, p: dict) -> dict:
        specs = p["MetricDataQueries"]
        ids = [q["Id"] for q in specs]
        if len(set(ids)) != len(ids):
            raise _invalid("The values for parameter id in MetricDataQueries are not unique.")
        _check_queries(specs)
        results = queries.run(cw.reading(region), specs, p["StartTime"], p["EndTime"])
        ascending = p.get("ScanBy") == "TimestampAscending"
        out = []
        for q in specs:
            if not q.get("ReturnData", True):
                continue
            values = sorted(results.get(q["Id"], {}).items(), reverse=not ascending)
            label = q.get("Label") or (q["MetricStat"]["Metric"]["MetricName"] if "MetricStat" in q else q["Id"])
            out.append({"Id": q["Id"], "Label": label, "Timestamps": [t for t, _ in values],
                        "Values": [v for _, v in values], "StatusCode": "Complete"})
        return {"MetricDataResults": out, "Messages": []}

    def list_metrics(region: str, p: dict) -> dict:
        wanted = p.get("Dimensions", [])
        found = []
        for namespace, name, dims in sorted(cw.reading(region).keys()):
            if p.get("Namespace", namespace) != namespace or p.get("MetricName", name) != name:
                continue
            present = dict(dims)
            if any(d["Name"] not in present or ("Value" in d and present[d["Name"]] != d["Value"]) for d in wanted):
                continue
            found.append({"Namespace": namespace, "MetricName": name,
                          "Dimensions": [{"Name": k, "Value": v} for k, v in dims]})
        return page(found, "Metrics", p.get("NextToken"), PAGE)

    def put_metric_alarm(region: str, p: dict) -> dict:
        single = "MetricName" in p or "Namespace" in p
        if single == ("Metrics" in p):
            raise _combination("Exactly one of MetricName and Metrics must be specified.")
        if single:
            if ("Statistic" in p) == ("ExtendedStatistic" in p):
                raise _combination("Exactly one of Statistic and ExtendedStatistic must be specified.")
            if "ExtendedStatistic" in p and queries.check_statistic(p["ExtendedStatistic"]) is None:
                raise _invalid("ExtendedStatistic takes a percentile (such as p99).")
            for member in ("MetricName", "Namespace", "Period"):
                if member not in p:
                    raise ServiceError("MissingRequiredParameterException", f"The parameter {member} is required.")
        else:
            if not any(q.get("ReturnData", True) for q in p["Metrics"]):
                raise _invalid("Exactly one element of the metrics list should return data.")
            _check_queries(p["Metrics"])
            if not any("MetricStat" in q for q in p["Metrics"]):
                raise _invalid("The metrics list must hold at least one MetricStat: its period is the alarm's.")
        for member in ("EvaluationPeriods", "ComparisonOperator", "Threshold"):
            if member not in p:
                raise ServiceError("MissingRequiredParameterException", f"The parameter {member} is required.")
        if p["ComparisonOperator"] not in COMPARISONS:
            raise _invalid(f"sagemaker-emu evaluates static thresholds ({', '.join(COMPARISONS)}); "
                           f"not {p['ComparisonOperator']}.")
        if p.get("DatapointsToAlarm", 1) > p["EvaluationPeriods"]:
            raise _invalid("DatapointsToAlarm must be less than or equal to EvaluationPeriods.")
        cw.put_alarm(region, p)
        return {}

    def describe_alarms(region: str, p: dict) -> dict:
        alarms = cw.alarms(region)
        if "AlarmNames" in p:
            alarms = [a for a in alarms if a.name in p["AlarmNames"]]
        if "AlarmNamePrefix" in p:
            alarms = [a for a in alarms if a.name.startswith(p["AlarmNamePrefix"])]
        if "StateValue" in p:
            alarms = [a for a in alarms if a.state == p["StateValue"]]
        if "ActionPrefix" in p:
            alarms = [a for a in alarms if any(x.startswith(p["ActionPrefix"]) for s in ("OK", "ALARM", "INSUFFICIENT_DATA")
                                               for x in a.actions(s))]
        if p.get("AlarmTypes") and "MetricAlarm" not in p["AlarmTypes"]:
            alarms = []
        alarms.sort(key=lambda a: a.name)
        out = page(alarms, "MetricAlarms", p.get("NextToken"), p.get("MaxRecords", 50))
        return {**out, "MetricAlarms": [a.describe() for a in out["MetricAlarms"]], "CompositeAlarms": []}

    def describe_alarms_for_metric(region: str, p: dict) -> dict:
        return {"MetricAlarms": [a.describe() for a in cw.alarms(region) if matches_metric(a, p)]}

    def delete_alarms(region: str, p: dict) -> dict:
        cw.delete_alarms(region, p["AlarmNames"])
        return {}

    def set_alarm_state(region: str, p: dict) -> dict:
        cw.set_state(region, p["AlarmName"], p["StateValue"], p["StateReason"], p.get("StateReasonData"))
        return {}

    def enable_alarm_actions(region: str, p: dict) -> dict:
        cw.set_actions_enabled(region, p["AlarmNames"], True)
        return {}

    def disable_alarm_actions(region: str, p: dict) -> dict:
        cw.set_actions_enabled(region, p["AlarmNames"], False)
        return {}

    def describe_alarm_history(region: str, p: dict) -> dict:
        items = [i for i in cw.history(region)
                 if p.get("AlarmName", i["AlarmName"]) == i["AlarmName"]
                 and "MetricAlarm" in p.get("AlarmTypes", ["MetricAlarm"])
                 and p.get("HistoryItemType", i["HistoryItemType"]) == i["HistoryItemType"]
                 and p.get("StartDate", i["Timestamp"]) <= i["Timestamp"] <= p.get("EndDate", i["Timestamp"])]
        if p.get("ScanBy") != "TimestampAscending":
            items.reverse()  # newest first, CloudWatch's default
        return page(items, "AlarmHistoryItems", p.get("NextToken"), p.get("MaxRecords", 100))

    def list_tags_for_resource(region: str, p: dict) -> dict:
        return {"Tags": [{"Key": k, "Value": v} for k, v in cw.tagging(region, p["ResourceARN"], {}).items()]}

    def tag_resource(region: str, p: dict) -> dict:
        cw.tagging(region, p["ResourceARN"], {t["Key"]: t["Value"] for t in p["Tags"]})
        return {}

    def untag_resource(region: str, p: dict) -> dict:
        cw.tagging(region, p["ResourceARN"], {}, p["TagKeys"])
        return {}

    return {"PutMetricData": put_metric_data, "GetMetricStatistics": get_metric_statistics,
            "GetMetricData": get_metric_data, "ListMetrics": list_metrics, "PutMetricAlarm": put_metric_alarm,
            "DescribeAlarms": describe_alarms, "DescribeAlarmsForMetric": describe_alarms_for_metric,
            "DeleteAlarms": delete_alarms, "SetAlarmState": set_alarm_state,
            "EnableAlarmActions": enable_alarm_actions, "DisableAlarmActions": disable_alarm_actions,
            "DescribeAlarmHistory": describe_alarm_history, "ListTagsForResource": list_tags_for_resource,
            "TagResource": tag_resource, "UntagResource": untag_resource}
