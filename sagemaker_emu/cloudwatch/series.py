"""The metric store: per series (namespace, metric, dimensions), one bucket per second of
statistics (sum, count, min, max), kept for `retention_s` (CloudWatch keeps 1-second data for
3 hours) and at most `max_series` series (the least recently written goes first).

Memory is bounded: a bucket is a 4-list (about 160 bytes with its dict slot and floats); a
series written every second for 3 hours holds 10,800 of them (~1.7 MB). A variant's eight
invocation series hold 13.8 MB after 3 busy hours, 23.4 MB with the percentile bins below
(`bench record --memory`), so a few busy endpoints take tens of MB and dozens take hundreds;
`max_series` caps the number of series.

Series that receive single values (not statistic sets) also keep percentile bins
(cloudwatch/sketch.py): per second for the last `DETAIL_S`, then merged per minute; a bin set
never holds more than the value range's bins (~700 from 100 us to 100 s).
"""

from __future__ import annotations

import collections
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from sagemaker_emu.cloudwatch import sketch
from sagemaker_emu.cloudwatch.sketch import Bins

RETENTION_S = 3 * 3600
MAX_SERIES = 20_000
DETAIL_S = 300  # percentile bins stay per second this long, then merge into their minute

Dimensions = tuple[tuple[str, str], ...]  # sorted (name, value) pairs
Key = tuple[str, str, Dimensions]  # (namespace, metric name, dimensions)
# A datapoint as the runtime or PutMetricData gives it: key, value (or statistic set), unit, time
Point = tuple[Key, float, str, float]


def dimensions(pairs: Iterable[tuple[str, str]] | Sequence[dict]) -> Dimensions:
    """`[{"Name": .., "Value": ..}]` or (name, value) pairs -> the store's sorted tuple."""
    items = [(d["Name"], d["Value"]) if isinstance(d, dict) else tuple(d) for d in pairs]
    return tuple(sorted(items))


@dataclass
class Series:
    unit: str = "None"
    buckets: dict[int, list[float]] = field(default_factory=dict)  # second -> [sum, count, min, max]
    order: collections.deque = field(default_factory=collections.deque)  # seconds, oldest first
    touched: float = 0.0
    sketches: dict[int, Bins] = field(default_factory=dict)  # second -> percentile bins (recent)
    sketch_order: collections.deque = field(default_factory=collections.deque)  # their seconds, oldest first
    minutes: dict[int, Bins] = field(default_factory=dict)  # minute start -> bins (older than DETAIL_S)


class MetricStore:
    def __init__(self, retention_s: float = RETENTION_S, max_series: int = MAX_SERIES,
                 wall: Callable[[], float] = time.time) -> None:
        self.retention_s = retention_s
        self.max_series = max_series
        self.wall = wall
        self._lock = threading.Lock()
        self._series: dict[Key, Series] = {}

    # ------------------------------------------------------------ writing

    def put(self, points: Iterable[Point]) -> None:
        """Add datapoints (one lock for the lot: the runtime writes a few per invocation)."""
        with self._lock:
            for key, value, unit, when in points:
                series = self._add(key, unit, when, value, 1.0, value, value)
                bins: Bins = {}
                sketch.add(bins, value)
                self._sketch(series, int(when), bins)

    def put_statistics(self, key: Key, unit: str, when: float, total: float, count: float,
                       minimum: float, maximum: float, bins: Bins | None = None) -> None:
        """A StatisticSet (from PutMetricData, or a second of invocations with the percentile
        `bins` of its values; a StatisticSet alone has none, as on CloudWatch)."""
        with self._lock:
            series = self._add(key, unit, when, total, count, minimum, maximum)
            if bins:
                self._sketch(series, int(when), bins)

    def _sketch(self, series: Series, second: int, bins: Bins) -> None:
        order = series.sketch_order
        if order and second < order[-1] - DETAIL_S:  # a late value: straight into its minute
            if second >= order[-1] - self.retention_s:
                sketch.merge(series.minutes.setdefault(second // 60 * 60, {}), bins)
            return
        held = series.sketches.get(second)
        if held is None:
            held = series.sketches[second] = {}
            if order and second < order[-1]:  # late within the window: keep the order sorted
                order = series.sketch_order = collections.deque(sorted((*order, second)))
            else:
                order.append(second)
        sketch.merge(held, bins)
        horizon = order[-1] - DETAIL_S
        while order[0] < horizon:  # seconds leaving the detail window merge into their minute
            old = order.popleft()
            sketch.merge(series.minutes.setdefault(old // 60 * 60, {}), series.sketches.pop(old))
            while series.minutes and next(iter(series.minutes)) < old - self.retention_s:
                del series.minutes[next(iter(series.minutes))]  # minutes arrive in order: the first is oldest

    def _add(self, key: Key, unit: str, when: float, total: float, count: float, minimum: float,
             maximum: float) -> Series:
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= self.max_series:
                oldest = min(self._series, key=lambda k: self._series[k].touched)
                del self._series[oldest]
            series = self._series[key] = Series(unit=unit)
        series.touched = when
        second = int(when)
        bucket = series.buckets.get(second)
        if bucket is None:
            series.buckets[second] = [total, count, minimum, maximum]
            if series.order and second < series.order[-1]:  # late datapoint: keep the order sorted
                series.order = collections.deque(sorted((*series.order, second)))
            else:
                series.order.append(second)
            horizon = second - self.retention_s
            while series.order and series.order[0] < horizon:
                series.buckets.pop(series.order.popleft(), None)
        else:
            bucket[0] += total
            bucket[1] += count
            bucket[2] = min(bucket[2], minimum)
            bucket[3] = max(bucket[3], maximum)
        return series

    def forget(self, match: Callable[[Key], bool]) -> None:
        with self._lock:
            for key in [k for k in self._series if match(k)]:
                del self._series[key]

    def reset(self) -> None:
        with self._lock:
            self._series.clear()

    # ------------------------------------------------------------ reading

    def keys(self) -> list[Key]:
        with self._lock:
            return list(self._series)

    def unit(self, key: Key) -> str | None:
        series = self._series.get(key)
        return series.unit if series else None

    def aggregate(self, key: Key, start: float, end: float, period: float) -> list[tuple[float, list[float]]]:
        """(period start, [sum, count, min, max]) for each period in [start, end) holding data."""
        with self._lock:
            series = self._series.get(key)
            if series is None:
                return []
            periods: dict[int, list[float]] = {}
            for second, (total, count, minimum, maximum) in series.buckets.items():
                if not start <= second < end:
                    continue
                index = int((second - start) // period)
                agg = periods.get(index)
                if agg is None:
                    periods[index] = [total, count, minimum, maximum]
                else:
                    agg[0] += total
                    agg[1] += count
                    agg[2] = min(agg[2], minimum)
                    agg[3] = max(agg[3], maximum)
        return [(start + index * period, agg) for index, agg in sorted(periods.items())]

    def percentile_bins(self, key: Key, start: float, end: float, period: float) -> dict[float, Bins]:
        """Period start -> the merged percentile bins of [start, end); a minute merged after
        DETAIL_S counts in the period holding its first second."""
        with self._lock:
            series = self._series.get(key)
            if series is None:
                return {}
            merged: dict[float, Bins] = {}
            for second, bins in (*series.sketches.items(), *series.minutes.items()):
                if start <= second < end:
                    sketch.merge(merged.setdefault(start + (second - start) // period * period, {}), bins)
            return merged


def statistic(name: str, agg: list[float]) -> float:
    total, count, minimum, maximum = agg
    return {"Sum": total, "SampleCount": count, "Average": total / count if count else math.nan,
            "Minimum": minimum, "Maximum": maximum}[name]
