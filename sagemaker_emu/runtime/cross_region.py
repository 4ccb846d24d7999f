"""CrossRegionTrafficConfig: what an endpoint accepts per second from inference routers in
other Regions.

The cap is MaxCrossRegionPercentPerEndpoint percent of MaxInvocationsPerSecondPerInstance times
the endpoint's InService instances, rounded up, shared by its variants and inference components.
It is a token bucket per endpoint (as many tokens as the cap, refilled at the cap per second of
the emulator's clock), so a burst up to the cap passes and the rate over a second holds it.
Calls sent to the endpoint directly, and by routers in its own Region, are not counted.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable, Mapping


def cap(config: Mapping[str, Any], instances: int) -> int:
    """Requests per second the endpoint takes from other Regions' routers."""
    return math.ceil(config["MaxCrossRegionPercentPerEndpoint"] * config["MaxInvocationsPerSecondPerInstance"]
                     * instances / 100)


class _Bucket:
    def __init__(self, now: float) -> None:
        self.lock = threading.Lock()
        self.tokens: float | None = None  # full on first use
        self.at = now


class CrossRegionCaps:
    def __init__(self, wall: Callable[[float], float] = lambda s: s) -> None:
        self._second = wall(1.0)  # one second of the emulator's clock, in wall seconds
        self._buckets: dict[str, _Bucket] = {}

    def admit(self, endpoint_arn: str, per_second: int) -> bool:
        """Take one request for the endpoint if the cap allows it now."""
        bucket = self._buckets.get(endpoint_arn) or self._buckets.setdefault(endpoint_arn, _Bucket(time.monotonic()))
        with bucket.lock:  # one endpoint's bucket: callers of other endpoints never wait here
            now = time.monotonic()
            tokens = per_second if bucket.tokens is None else min(
                per_second, bucket.tokens + (now - bucket.at) / self._second * per_second)
            bucket.at = now
            if tokens < 1:
                bucket.tokens = tokens
                return False
            bucket.tokens = tokens - 1
            return True

    def forget(self, endpoint_arn: str) -> None:
        self._buckets.pop(endpoint_arn, None)

    def clear(self) -> None:
        self._buckets.clear()
