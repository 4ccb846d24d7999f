"""The metric store's ring and bounds, and an alarm's decision, as CloudWatch documents them."""

import pytest

from sagemaker_emu.cloudwatch.alarms import ALARM, INSUFFICIENT, OK, Alarm, decide
from sagemaker_emu.cloudwatch.series import MetricStore, statistic

KEY = ("NS", "M", ())


def test_buckets_per_second_aggregate_by_period():
    store = MetricStore()
    store.put([(KEY, 1.0, "Count", 100.2), (KEY, 3.0, "Count", 100.9), (KEY, 5.0, "Count", 161.0)])
    periods = store.aggregate(KEY, 60.0, 180.0, 60.0)
    assert [(when, agg) for when, agg in periods] == [(60.0, [4.0, 2.0, 1.0, 3.0]), (120.0, [5.0, 1.0, 5.0, 5.0])]
    assert statistic("Average", periods[0][1]) == 2.0 and store.unit(KEY) == "Count"


def test_retention_and_series_are_bounded():
    store = MetricStore(retention_s=10, max_series=2)
    store.put([(KEY, 1.0, "None", float(t)) for t in range(100)])
    assert [when for when, _ in store.aggregate(KEY, 0.0, 200.0, 1.0)] == [float(t) for t in range(89, 100)]
    store.put([(("NS", "B", ()), 1.0, "None", 200.0), (("NS", "C", ()), 1.0, "None", 201.0)])
    assert set(store.keys()) == {("NS", "B", ()), ("NS", "C", ())}  # the least recently written went


def alarm(**spec):
    return Alarm("a", "arn", "us-east-1", {"EvaluationPeriods": 3, "Threshold": 10.0,
                                           "ComparisonOperator": "GreaterThanThreshold", **spec}, 0.0)


@pytest.mark.parametrize("values,spec,state", [
    ([11.0, 12.0, 13.0], {}, ALARM),
    ([11.0, 1.0, 13.0], {}, OK),
    ([11.0, 1.0, 13.0], {"DatapointsToAlarm": 2}, ALARM),
    ([None, None, None], {}, INSUFFICIENT),
    ([None, None, None], {"TreatMissingData": "breaching"}, ALARM),
    ([None, None, None], {"TreatMissingData": "notBreaching"}, OK),
    ([11.0, None, None], {"TreatMissingData": "notBreaching", "DatapointsToAlarm": 1}, ALARM),
])
def test_decide(values, spec, state):
    assert decide(alarm(**spec), values)[0] == state


def test_ignore_keeps_the_state_when_nothing_arrives():
    kept = alarm(TreatMissingData="ignore")
    kept.state = ALARM
    assert decide(kept, [None, None, None])[0] == ALARM


def test_percentiles_are_within_one_percent_and_bounded_by_min_and_max():
    import random

    from sagemaker_emu.cloudwatch import sketch
    rng = random.Random(7)
    values = [rng.lognormvariate(8, 1.5) for _ in range(20_000)]
    bins: sketch.Bins = {}
    for v in values:
        sketch.add(bins, v)
    ordered = sorted(values)
    for p in (50, 90, 99, 99.9):
        exact = ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
        assert sketch.percentile(bins, p, ordered[0], ordered[-1]) == pytest.approx(exact, rel=0.011)
    assert sketch.percentile(bins, 0, ordered[0], ordered[-1]) == ordered[0]
    assert sketch.percentile(bins, 100, ordered[0], ordered[-1]) == ordered[-1]
    assert len(bins) < 700  # 20,000 values, a few hundred counts
    assert [sketch.parse(s) for s in ("p99", "p99.9", "p100", "p0", "p101", "tm99", "P99")] == \
        [99.0, 99.9, 100.0, 0.0, None, None, None]


def test_percentile_bins_stay_per_second_then_merge_per_minute():
    from sagemaker_emu.cloudwatch import series
    store = MetricStore()
    store.put([(KEY, float(t % 7), "None", float(t)) for t in range(0, 2000)])
    held = store._series[KEY]
    assert len(held.sketches) == series.DETAIL_S + 1 and min(held.sketches) == 1999 - series.DETAIL_S
    assert min(held.minutes) == 0 and max(held.minutes) < 1999 - series.DETAIL_S
    merged = store.percentile_bins(KEY, 0.0, 2000.0, 2000.0)
    assert sum(merged[0.0].values()) == 2000  # every value counted once, recent or merged
    store.put_statistics(KEY, "None", 2000.0, 10.0, 2.0, 4.0, 6.0)  # a statistic set adds no bins
    assert sum(store.percentile_bins(KEY, 0.0, 3000.0, 3000.0)[0.0].values()) == 2000


def test_percentiles_of_negative_zero_and_positive_values():
    from sagemaker_emu.cloudwatch import sketch
    values = [-500.0, -20.0, -1.0, 0.0, 0.0, 3.0, 40.0, 700.0]
    bins: sketch.Bins = {}
    for v in values:
        sketch.add(bins, v)
    shown = [sketch.percentile(bins, p, -500.0, 700.0) for p in (10, 25, 30, 50, 70, 90)]
    assert shown == [pytest.approx(v, rel=0.011) for v in (-500.0, -20.0, -1.0, 0.0, 3.0, 700.0)]


def test_late_values_land_in_packed_seconds_and_minutes_as_in_open_ones():
    """Complete seconds and minutes are packed into arrays; a value arriving late for one (a
    PutMetricData with a past timestamp) still counts, in its bucket and its bins."""
    from sagemaker_emu.cloudwatch import series

    store = MetricStore()
    store.put([(KEY, 1.0, "None", float(t)) for t in range(0, 1000, 2)])  # every other second
    held = store._series[KEY]
    assert isinstance(held.sketches[900], series.Packed) and isinstance(held.minutes[0], series.Packed)
    store.put([(KEY, 5.0, "None", 901.0), (KEY, 5.0, "None", 900.0), (KEY, 7.0, "None", 30.0)])  # late ones
    assert [agg for when, agg in store.aggregate(KEY, 900.0, 902.0, 1.0)] == \
        [[6.0, 2.0, 1.0, 5.0], [5.0, 1.0, 5.0, 5.0]]  # into a kept second, and between two
    assert store.aggregate(KEY, 30.0, 31.0, 1.0) == [(30.0, [8.0, 2.0, 1.0, 7.0])]
    bins = store.percentile_bins(KEY, 0.0, 1000.0, 1000.0)[0.0]
    assert sum(count for _, count in bins.items()) == 503  # 500 + the 3 late values, each once
    from sagemaker_emu.cloudwatch.sketch import bin_of

    assert store.percentile_bins(KEY, 0.0, 60.0, 60.0)[0.0] == {bin_of(1.0): 30.0, bin_of(7.0): 1.0}
