"""AWS cron expressions, as Application Auto Scaling's scheduled actions take them:
`cron(minutes hours day-of-month month day-of-week year)`, six fields, in a time zone.

Fields take `*`, lists (`,`), ranges (`-`), steps (`/`) and names (JAN-DEC, SUN-SAT, day 1 is
Sunday); day-of-month also `L` (the month's last day) and `nW` (the weekday nearest day n), and
day-of-week `nL` (the month's last such weekday) and `n#k` (its k-th). One of the two day
fields must be `?`, as AWS requires.
"""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = {name: number for number, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
WEEKDAYS = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}
HORIZON_DAYS = 366 * 5  # how far ahead the next run is looked for; further counts as never


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    month_days: str  # the day-of-month field as written ("?" when day-of-week decides)
    months: frozenset[int]
    weekdays: str  # the day-of-week field as written ("?" when day-of-month decides)
    years: frozenset[int] | None  # None: every year
    zone: datetime.tzinfo

    def next_after(self, after: float) -> float | None:
        """The first run strictly after `after` (epoch seconds), or None within the horizon."""
        start = datetime.datetime.fromtimestamp(after, self.zone).replace(second=0, microsecond=0) \
            + datetime.timedelta(minutes=1)
        times = sorted((h, m) for h in self.hours for m in self.minutes)
        for offset in range(HORIZON_DAYS):
            day = start.date() + datetime.timedelta(days=offset)
            if day.month not in self.months or (self.years is not None and day.year not in self.years):
                continue
            if not self._day_matches(day):
                continue
            for hour, minute in times:
                if offset == 0 and (hour, minute) < (start.hour, start.minute):
                    continue
                when = datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone)
                return when.timestamp()
        return None

    def _day_matches(self, day: datetime.date) -> bool:
        if self.month_days != "?":
            return _month_day_matches(self.month_days, day)
        return _weekday_matches(self.weekdays, day)


def parse(expression: str, zone_name: str | None = None) -> Cron:
    """`cron(...)`'s fields; ValueError saying what is wrong."""
    fields = expression.split()
    if len(fields) != 6:
        raise ValueError("a cron expression has six fields: minutes hours day-of-month month day-of-week year")
    minutes, hours, month_days, months, weekdays, years = fields
    if (month_days == "?") == (weekdays == "?"):
        raise ValueError("exactly one of day-of-month and day-of-week must be '?'")
    zone = time_zone(zone_name)
    for item in month_days.split(",") if month_days != "?" else ():
        if item != "L" and not item.endswith("W"):
            _values(item, 1, 31)
        elif item.endswith("W") and not (item[:-1].isdigit() and 1 <= int(item[:-1]) <= 31):
            raise ValueError(f"invalid day-of-month {item}")
    for item in weekdays.split(",") if weekdays != "?" else ():
        _weekday_item(item)
    return Cron(minutes=_field(minutes, 0, 59), hours=_field(hours, 0, 23), month_days=month_days,
                months=_field(months, 1, 12, MONTHS), weekdays=weekdays,
                years=None if years == "*" else _field(years, 1970, 2199), zone=zone)


def time_zone(name: str | None) -> datetime.tzinfo:
    """A scheduled action's Timezone (an IANA name); UTC without one."""
    try:
        return ZoneInfo(name) if name else datetime.timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name}") from None


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    return frozenset(v for item in text.split(",") for v in _values(item, low, high, names))


def _values(item: str, low: int, high: int, names: dict[str, int] | None = None) -> range:
    """`*`, `n`, `a-b`, `*/s`, `a/s`, `a-b/s` -> the values they name."""
    span, _, step_text = item.partition("/")
    step = _number(step_text, 1, high - low + 1 if high > low else 1, None) if step_text else 1
    if span == "*":
        first, last = low, high
    elif "-" in span:
        first_text, last_text = span.split("-", 1)
        first, last = _number(first_text, low, high, names), _number(last_text, low, high, names)
    else:
        first = _number(span, low, high, names)
        last = high if step_text else first
    if first > last:
        raise ValueError(f"invalid range {item}")
    return range(first, last + 1, step)


def _number(text: str, low: int, high: int, names: dict[str, int] | None) -> int:
    value = names.get(text.upper()) if names else None
    if value is None:
        if not text.isdigit():
            raise ValueError(f"invalid value {text}")
        value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{text} is outside {low}-{high}")
    return value


def _weekday_item(item: str) -> tuple[str, int, int]:
    """("each", day, 0) for plain values (checked), ("last", day, 0) for `nL`, ("nth", day, k) for `n#k`."""
    if "#" in item:
        day, _, nth = item.partition("#")
        return "nth", _number(day, 1, 7, WEEKDAYS), _number(nth, 1, 5, None)
    if item.endswith("L") and len(item) > 1:
        return "last", _number(item[:-1], 1, 7, WEEKDAYS), 0
    _values(item, 1, 7, WEEKDAYS)
    return "each", 0, 0


def _aws_weekday(day: datetime.date) -> int:
    return (day.isoweekday() % 7) + 1  # Sunday 1 ... Saturday 7


def _month_day_matches(field: str, day: datetime.date) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    for item in field.split(","):
        if item == "L":
            if day.day == last:
                return True
        elif item.endswith("W"):
            if day == _nearest_weekday(day.year, day.month, min(int(item[:-1]), last)):
                return True
        elif day.day in _values(item, 1, 31):
            return True
    return False


def _nearest_weekday(year: int, month: int, wanted: int) -> datetime.date:
    """The weekday (Monday-Friday) nearest day `wanted`, within the same month."""
    day = datetime.date(year, month, wanted)
    last = calendar.monthrange(year, month)[1]
    if day.weekday() == 5:  # Saturday: Friday, or Monday when Friday is last month's
        return day - datetime.timedelta(days=1) if wanted > 1 else day + datetime.timedelta(days=2)
    if day.weekday() == 6:  # Sunday: Monday, or Friday when Monday is next month's
        return day + datetime.timedelta(days=1) if wanted < last else day - datetime.timedelta(days=2)
    return day


def _weekday_matches(field: str, day: datetime.date) -> bool:
    weekday = _aws_weekday(day)
    last = calendar.monthrange(day.year, day.month)[1]
    for item in field.split(","):
        kind, number, nth = _weekday_item(item)
        if kind == "nth" and weekday == number and (day.day - 1) // 7 + 1 == nth:
            return True
        if kind == "last" and weekday == number and day.day + 7 > last:
            return True
        if kind == "each" and weekday in _values(item, 1, 7, WEEKDAYS):
            return True
    return False
