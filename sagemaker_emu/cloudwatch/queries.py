"""GetMetricData's queries, for the API and for alarms: metric statistics per period, and
metric math over them (arithmetic on query ids and numbers, and SUM/AVG/MIN/MAX over ids or
`METRICS()`), evaluated timestamp by timestamp."""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Callable, Mapping

from sagemaker_emu.cloudwatch import sketch
from sagemaker_emu.cloudwatch.series import MetricStore, dimensions, statistic
from sagemaker_emu.errors import ServiceError

STATISTICS = ("Sum", "Average", "Minimum", "Maximum", "SampleCount")
Values = dict[float, float]  # period start -> value
_OPERATORS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
}
_FUNCTIONS: dict[str, Callable[[list[float]], float]] = {"SUM": sum, "AVG": lambda v: sum(v) / len(v), "MIN": min, "MAX": max}


def metric_key(metric: Mapping[str, Any]) -> tuple[str, str, tuple]:
    return (metric["Namespace"], metric["MetricName"], dimensions(metric.get("Dimensions", [])))


def check_statistic(stat: str) -> float | None:
    """The percentile `stat` names (None for the five plain statistics); others are refused."""
    if stat in STATISTICS:
        return None
    percentile = sketch.parse(stat)
    if percentile is None:
        raise ServiceError("InvalidParameterValueException",
                           f"The value {stat} for parameter Stat is not supported; sagemaker-emu answers "
                           f"{', '.join(STATISTICS)} and percentiles (p0 to p100, such as p99 or p99.9).")
    return percentile


def stat_values(store: MetricStore, metric: Mapping[str, Any], stat: str, start: float, end: float,
                period: float) -> Values:
    """The statistic of each period in [start, end) that holds datapoints (for a percentile,
    datapoints sent as single values: a statistic set has none, as on CloudWatch)."""
    percentile = check_statistic(stat)
    key = metric_key(metric)
    aggregated = store.aggregate(key, start, end, period)
    if percentile is None:
        return {when: statistic(stat, agg) for when, agg in aggregated}
    bins = store.percentile_bins(key, start, end, period)
    return {when: sketch.percentile(bins[when], percentile, agg[2], agg[3]) for when, agg in aggregated
            if bins.get(when)}


def run(store: MetricStore, queries: list[Mapping[str, Any]], start: float, end: float,
        period: float | None = None) -> dict[str, Values]:
    """Every query's values by id (expressions after the metrics they name). Without `period`
    (GetMetricData), each query's own, with periods on its boundaries as AWS aligns them; with
    one (an alarm), that period from `start` exactly."""
    results: dict[str, Values] = {}
    for query in queries:
        if "MetricStat" in query:
            stat = query["MetricStat"]
            step = period or stat["Period"]
            first = start if period else start // step * step
            results[query["Id"]] = stat_values(store, stat["Metric"], stat["Stat"], first, end, step)
    for query in queries:
        if "Expression" in query:
            results[query["Id"]] = expression(query["Expression"], results)
    return results


def expression(text: str, results: Mapping[str, Values]) -> Values:
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise ServiceError("InvalidParameterValueException", f"Invalid metric math expression: {text}") from None
    timestamps = sorted({t for values in results.values() for t in values})
    out: Values = {}
    for when in timestamps:
        value = _evaluate(tree, results, when, text)
        if value is not None and not math.isnan(value):
            out[when] = value
    return out


def _evaluate(node: ast.AST, results: Mapping[str, Values], when: float, text: str) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in results:
            raise ServiceError("InvalidParameterValueException", f"Unknown metric id {node.id} in {text}")
        return results[node.id].get(when)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _evaluate(node.operand, results, when, text)
        return None if value is None else -value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _evaluate(node.left, results, when, text), _evaluate(node.right, results, when, text)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Div) and right == 0:
            return None
        return _OPERATORS[type(node.op)](left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if len(node.args) == 1 and isinstance(node.args[0], ast.Call) and getattr(node.args[0].func, "id", "") == "METRICS":
            values = [v[when] for v in results.values() if when in v]
        else:
            values = [v for v in (_evaluate(a, results, when, text) for a in node.args) if v is not None]
        return _FUNCTIONS[node.func.id](values) if values else None
    raise ServiceError("InvalidParameterValueException",
                       f"sagemaker-emu evaluates arithmetic, SUM, AVG, MIN, MAX and METRICS() in metric math; "
                       f"not: {text}")
