"""Percentiles from bounded memory: values are counted in logarithmic bins, each 2% wide, so
a percentile is answered within 1% of the true value however many values there were, and a
bin set holds at most a few hundred counts (latencies from 1 us to an hour span ~1,100 bins;
real traffic fills a few dozen). Bin sets add up, so a period's percentile comes from the
per-second sets it covers. Exact minimum and maximum come from the statistic set beside it.
"""

from __future__ import annotations

import math
import re
from typing import Iterable, Protocol

GAMMA = 1.02
_LOG_GAMMA = math.log(GAMMA)
# Bins sort as their values do: negative values below NEGATIVE (the larger, the lower), then
# ZERO, then positive values (whose bins are above -40,000 down to 1e-300).
ZERO = -(2 ** 31)
NEGATIVE = -(2 ** 40)
Bins = dict[int, float]  # bin -> count

PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d{1,10})?|100)$")


def bin_of(value: float) -> int:
    if value > 0:
        return math.floor(math.log(value) / _LOG_GAMMA)
    return ZERO if value == 0 else NEGATIVE - math.floor(math.log(-value) / _LOG_GAMMA)


def _middle(key: int) -> float:
    """A bin's value: its middle on the log scale."""
    if key == ZERO:
        return 0.0
    if key < ZERO:
        return -(GAMMA ** (NEGATIVE - key + 0.5))
    return GAMMA ** (key + 0.5)


def add(bins: Bins, value: float, count: float = 1.0) -> None:
    key = bin_of(value)
    bins[key] = bins.get(key, 0.0) + count


class BinItems(Protocol):
    """Bins as a dict, or packed (cloudwatch/series.py's Packed): what `merge` reads."""

    def items(self) -> Iterable[tuple[int, float]]: ...


def merge(into: Bins, other: BinItems) -> None:
    for key, count in other.items():
        into[key] = into.get(key, 0.0) + count


def percentile(bins: Bins, p: float, minimum: float, maximum: float) -> float:
    """The value under which `p`% of the counted values fall, within 1%, inside [minimum, maximum]."""
    if p <= 0 or p >= 100:  # the ends are known exactly
        return minimum if p <= 0 else maximum
    total = sum(bins.values())
    rank = p / 100 * total
    seen = 0.0
    for key in sorted(bins):
        seen += bins[key]
        if seen >= rank:
            return min(max(_middle(key), minimum), maximum)
    return maximum


def parse(statistic: str) -> float | None:
    """`p99`, `p99.9`, `p50` -> the percentile; None if `statistic` is not one."""
    match = PERCENTILE.match(statistic)
    return float(match.group(1)) if match else None
