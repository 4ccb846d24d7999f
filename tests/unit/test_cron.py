"""Scheduled actions' cron expressions (autoscaling/cron.py) and the scheduler running them on
a clock the test moves."""

import datetime
import threading
import time

import pytest

from sagemaker_emu.autoscaling import cron
from sagemaker_emu.autoscaling.backend import AutoScaling
from sagemaker_emu.clock import Clock
from sagemaker_emu.errors import ServiceError


def epoch(text: str) -> float:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc).timestamp()


def next_run(expression: str, after: str, zone: str | None = None) -> str | None:
    found = cron.parse(expression, zone).next_after(epoch(after))
    return None if found is None else datetime.datetime.fromtimestamp(found, datetime.timezone.utc).isoformat()[:16]


@pytest.mark.parametrize("expression, after, expected", [
    ("0/15 * * * ? *", "2026-12-03T00:07:30", "2026-12-03T00:15"),
    ("0/15 * * * ? *", "2026-12-03T00:15:00", "2026-12-03T00:30"),  # strictly after
    ("0 9 ? * MON-FRI *", "2026-12-04T10:00:00", "2026-12-07T09:00"),  # Friday evening -> Monday
    ("0 0 L * ? *", "2026-02-01T00:00:00", "2026-02-28T00:00"),
    ("0 12 15W * ? *", "2026-08-01T00:00:00", "2026-08-14T12:00"),  # the 15th is a Saturday
    ("0 12 1W * ? *", "2026-08-01T00:00:00", "2026-08-03T12:00"),  # the 1st is a Saturday: Monday
    ("0 12 ? * 6L *", "2026-12-01T00:00:00", "2026-12-25T12:00"),  # the last Friday
    ("0 12 ? * 2#1 *", "2026-12-03T00:00:00", "2026-12-07T12:00"),  # the first Monday
    ("0 8 1 JAN,JUL ? 2027-2030", "2026-12-03T00:00:00", "2027-01-01T08:00"),
    ("0 0 1 1 ? 2020", "2026-12-03T00:00:00", None),
])
def test_next_run(expression, after, expected):
    assert next_run(expression, after) == expected


def test_a_time_zone_moves_the_runs():
    assert next_run("30 8 * * ? *", "2026-12-03T00:00:00", "Asia/Tokyo") == "2026-12-03T23:30"
    assert next_run("0 9 * * ? *", "2026-07-01T00:00:00", "Europe/Berlin") == "2026-07-01T07:00"  # summer time


@pytest.mark.parametrize("expression", ["* * * * * *", "0 0 * * ?", "61 * * * ? *", "0 0 ? * 8 *",
                                        "0 0 ? FOO * *", "0 0 32W * ? *", "5-1 * * * ? *"])
def test_what_aws_refuses_is_refused(expression):
    with pytest.raises(ValueError):
        cron.parse(expression)


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(ValueError):
        cron.parse("0 0 * * ? *", "Mars/Olympus")


class MovedClock(Clock):
    """Wall time as the test sets it."""

    def __init__(self, now: float) -> None:
        super().__init__()
        self.at = now

    def now(self) -> float:
        return self.at


class Capacity:
    def __init__(self) -> None:
        self.count, self.calls, self.called = 1, [], threading.Event()

    def current(self, region, resource_id, dimension):
        return self.count

    def set(self, region, resource_id, dimension, value):
        self.calls.append(value)
        self.count = value
        self.called.set()
        return True


def test_a_cron_action_runs_when_the_clock_reaches_it():
    clock, capacity = MovedClock(epoch("2026-12-03T08:59:30")), Capacity()
    aas = AutoScaling("123456789012", clock, cloudwatch=None, capacity=capacity)
    spec = {"ServiceNamespace": "sagemaker", "ResourceId": "endpoint/e/variant/v",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}
    aas.register("us-east-1", {**spec, "MinCapacity": 1, "MaxCapacity": 4})
    try:
        aas.put_scheduled("us-east-1", {**spec, "ScheduledActionName": "mornings", "Schedule": "cron(0 9 * * ? *)",
                                        "ScalableTargetAction": {"MinCapacity": 3}})
        [action] = aas._scheduled["us-east-1"].values()
        deadline = time.monotonic() + 10
        while action["_next"] is None:  # the scheduler has looked once, before 9:00
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert action["_next"] == epoch("2026-12-03T09:00:00") and capacity.calls == []
        clock.at = epoch("2026-12-03T09:00:01")
        assert capacity.called.wait(10)
        assert capacity.calls == [3] and action["_next"] == epoch("2026-12-04T09:00:00")
    finally:
        aas.stop()
    with pytest.raises(ServiceError):
        aas.put_scheduled("us-east-1", {**spec, "ScheduledActionName": "x", "Schedule": "cron(0 9 * * * *)"})
