"""Instance quotas of the emulated account, per region as in SageMaker's Service Quotas.

Every instance is a real process on this machine, so the defaults are what a laptop or a
2-core CI runner holds comfortably (llm-sim waits instead of computing, ~40 MB each);
`serve --quota total=N --quota ml.g5.xlarge=M` changes them.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

from sagemaker_emu.errors import LimitExceeded

DEFAULT_TOTAL = 64
TOTAL = "total"


class Quotas:
    """Limits on instances across the endpoints of one region: `total` and per instance type
    (a type without its own limit is bounded by the total alone)."""

    def __init__(self, limits: dict[str, int] | None = None) -> None:
        self.limits = {TOTAL: DEFAULT_TOTAL, **(limits or {})}

    @classmethod
    def parse(cls, specs: Iterable[str]) -> "Quotas":
        """From `NAME=N` strings (`total=100`, `ml.m5.large=8`); ValueError on anything else."""
        limits = {}
        for spec in specs:
            name, sep, value = spec.partition("=")
            if not sep or not value.strip().isdigit():
                raise ValueError(f"--quota wants NAME=COUNT (total=64, ml.m5.large=8), not {spec!r}")
            limits[name.strip()] = int(value)
        return cls(limits)

    def check(self, in_use: Counter, delta: Counter) -> None:
        """Raise ResourceLimitExceeded, in SageMaker's words, if `delta` more instances (by
        type) on top of `in_use` would pass a limit."""
        for itype, more in sorted(delta.items()):
            limit = self.limits.get(itype)
            if more > 0 and limit is not None and in_use[itype] + more > limit:
                raise LimitExceeded(_message(f"{itype} for endpoint usage", limit, in_use[itype], more))
        total_more = sum(delta.values())
        used = sum(in_use.values())
        if total_more > 0 and used + total_more > self.limits[TOTAL]:
            raise LimitExceeded(_message("Number of instances across active endpoints", self.limits[TOTAL],
                                         used, total_more))


def _message(quota: str, limit: int, used: int, more: int) -> str:
    return (f"The account-level service limit '{quota}' is {limit} Instances, with current utilization of "
            f"{used} Instances and a request delta of {more} Instances. Please use AWS Service Quotas to "
            "request an increase for this quota. If AWS Service Quotas is not available, contact AWS "
            "support to request an increase for this quota.")
