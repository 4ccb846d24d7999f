"""The metric store: per series (namespace, metric, dimensions), one bucket per second of
statistics (sum, count, min, max), kept for `retention_s` (CloudWatch keeps 1-second data for
3 hours) and at most `max_series` series (the least recently written goes first).

Memory is bounded and packed: a series keeps its seconds in one array of integers and their
statistics in one array of floats (40 bytes a second, against some 240 as a dict of lists), so
a series written every second for 3 hours holds 0.4 MB. Series that receive single values (not
statistic sets) also keep percentile bins (cloudwatch/sketch.py): per second for the last
`DETAIL_S`, then merged per minute; a second's or a minute's bins are packed into two arrays
once it is complete (a dict while it still receives values); a bin set never holds more than
the value range's bins (~700 from 100 us to 100 s).
`bench record --memory` measures what one busy variant's eight series hold (docs/performance.md).
"""

from __future__ import annotations

import bisect
import collections
import math
import threading
import time
from array import array
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

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
    items: list[tuple[str, str]] = [(d["Name"], d["Value"]) if isinstance(d, dict) else (d[0], d[1]) for d in pairs]
    return tuple(sorted(items))


class Packed:
    """A complete second's or minute's percentile bins, as two arrays (16 bytes a bin, not ~100 as a dict
    entry); read with `items()` like a dict of bins."""

    __slots__ = ("keys", "counts")

    def __init__(self, bins: Bins) -> None:
        ordered = sorted(bins.items())
        self.keys = array("q", (k for k, _ in ordered))
        self.counts = array("d", (c for _, c in ordered))

    def items(self) -> Iterator[tuple[int, float]]:
        return zip(self.keys, self.counts)


@dataclass
class Series:
    unit: str = "None"
    seconds: array = field(default_factory=lambda: array("q"))  # seconds holding data, ascending
    stats: array = field(default_factory=lambda: array("d"))  # [sum, count, min, max] for each of them
    head: int = 0  # the oldest second still kept; those before it are dropped in batches
    touched: float = 0.0
    sketches: dict[int, Bins | Packed] = field(default_factory=dict)  # second -> percentile bins (recent)
    sketch_order: collections.deque = field(default_factory=collections.deque)  # their seconds, oldest first
    minutes: dict[int, Bins | Packed] = field(default_factory=dict)  # minute start -> bins (older than DETAIL_S)
    open_minute: int | None = None  # the minute still receiving seconds: a dict until the next begins

    def merge_minute(self, minute: int, bins: Bins | Packed) -> None:
        if self.open_minute is None or minute > self.open_minute:  # a new minute: the one before is complete
            previous = self.minutes.get(self.open_minute) if self.open_minute is not None else None
            if isinstance(previous, dict) and self.open_minute is not None:
                self.minutes[self.open_minute] = Packed(previous)
            self.open_minute = minute
        found = self.minutes.get(minute)
        held: Bins = dict(found.items()) if isinstance(found, Packed) else (found or {})  # packed: a late value, rare
        sketch.merge(held, bins)
        self.minutes[minute] = held if minute == self.open_minute else Packed(held)


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
                series.merge_minute(second // 60 * 60, bins)
            return
        held = series.sketches.get(second)
        if held is None:
            held = series.sketches[second] = {}
            if order and second < order[-1]:  # late within the window: keep the order sorted
                order = series.sketch_order = collections.deque(sorted((*order, second)))
            else:
                before = series.sketches[order[-1]] if order else None
                if isinstance(before, dict):  # the second before is complete
                    series.sketches[order[-1]] = Packed(before)
                order.append(second)
        elif isinstance(held, Packed):  # a late value for a finished second
            held = series.sketches[second] = dict(held.items())
        sketch.merge(held, bins)
        horizon = order[-1] - DETAIL_S
        while order[0] < horizon:  # seconds leaving the detail window merge into their minute
            old = order.popleft()
            series.merge_minute(old // 60 * 60, series.sketches.pop(old))
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
        seconds, stats = series.seconds, series.stats
        newest = seconds[-1] if len(seconds) > series.head else None
        if newest is None or second > newest:
            seconds.append(second)
            stats.extend((total, count, minimum, maximum))
        else:
            if second < newest - self.retention_s:
                return series  # older than anything kept
            i = len(seconds) - 1 if second == newest else bisect.bisect_left(seconds, second, series.head)
            if seconds[i] == second:  # nearly always the newest second
                at = 4 * i
                stats[at] += total
                stats[at + 1] += count
                stats[at + 2] = min(stats[at + 2], minimum)
                stats[at + 3] = max(stats[at + 3], maximum)
                return series
            seconds.insert(i, second)  # a late datapoint between two kept seconds
            stats[4 * i:4 * i] = array("d", (total, count, minimum, maximum))
        horizon = seconds[-1] - self.retention_s
        while series.head < len(seconds) and seconds[series.head] < horizon:
            series.head += 1
        if series.head > 1024 and 2 * series.head > len(seconds):  # drop the expired in one move
            del seconds[:series.head]
            del stats[:4 * series.head]
            series.head = 0
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
            seconds, stats = series.seconds, series.stats
            first = bisect.bisect_left(seconds, math.ceil(start), series.head)
            last = bisect.bisect_left(seconds, math.ceil(end), first)
            for i in range(first, last):
                second = seconds[i]
                total, count, minimum, maximum = stats[4 * i:4 * i + 4]
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
