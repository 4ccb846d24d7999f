"""What an inference router has seen of each destination: how fast it answers, and whether it fails.

Kept per router and destination from the router's own attempts, as Envoy keeps per-balancer
state: nothing global is locked, and a lost update between two threads costs one sample.

- `latency` is a moving average of attempt time (sent to answered in full), seconds;
- `floor` is the lowest that average has been lately: what the destination does when well;
- `failing` says its last attempt failed without a model's answer (throttled, no capacity,
  gone, timed out).

A destination is degraded when it is failing, or when its latency is SLOW_FACTOR times the best
reference and SLOW_MARGIN above it; the reference is its own floor or the latency of another
destination heard from lately. So a destination that slows down is judged against itself before
any other has been tried, and against the others once they have. Degraded destinations are used
after the others, and each gets one call per PROBE_INTERVAL (service time, on the emulator's
clock) to learn when it recovers; a probe that comes back well clears it at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

SLOW_FACTOR = 2.0
SLOW_MARGIN = 0.005  # seconds: two calls of a few milliseconds differ by noise alone
PROBE_INTERVAL = 1.0  # service seconds between calls to a degraded destination
FRESH = 10.0  # service seconds a latency stays a reference for the others
FLOOR_WINDOW = 30.0  # service seconds a destination's best stays its reference
ALPHA = 0.1  # weight of the newest sample: one stray slow answer does not make a destination slow


@dataclass
class Seen:
    latency: float | None = None
    heard: float = 0.0  # monotonic time of the last sample
    floor: float | None = None
    floor_at: float = 0.0
    failing: bool = False
    probed: float = field(default=-1e18)  # monotonic time of the last probe


class RouterHealth:
    """Every router's view of its destinations, keyed by (router ARN, destination ARN)."""

    def __init__(self, wall: Callable[[float], float] = lambda s: s) -> None:
        self._wall = wall  # service seconds -> wall seconds (the emulator's clock)
        self._seen: dict[tuple[str, str], Seen] = {}

    def seen(self, router: str, destination: str) -> Seen:
        return self._seen.get((router, destination)) or self._seen.setdefault((router, destination), Seen())

    def answered(self, router: str, destination: str, seconds: float) -> None:
        """An attempt that a model answered (its own error included), in `seconds`."""
        s, now = self.seen(router, destination), time.monotonic()
        if s.latency is None or s.failing:
            s.latency = seconds
        elif s.floor is not None and seconds <= SLOW_FACTOR * s.floor < s.latency:
            s.latency = seconds  # a good answer after a slow spell: trust it at once
        else:
            s.latency += ALPHA * (seconds - s.latency)
        s.failing, s.heard = False, now
        if s.floor is None or s.latency <= s.floor or now - s.floor_at > self._wall(FLOOR_WINDOW):
            s.floor, s.floor_at = s.latency, now

    def failed(self, router: str, destination: str) -> None:
        """An attempt that failed without a model's answer."""
        s = self.seen(router, destination)
        s.failing, s.heard = True, time.monotonic()

    def degraded(self, router: str, destinations: Iterable[str]) -> set[str]:
        """Which of `destinations` are degraded now."""
        now, fresh = time.monotonic(), self._wall(FRESH)
        seen = {d: self.seen(router, d) for d in destinations}
        heard = [s.latency for s in seen.values() if s.latency is not None and not s.failing
                 and now - s.heard <= fresh]
        best = min(heard, default=None)
        out = set()
        for d, s in seen.items():
            if s.failing:
                out.add(d)
                continue
            if s.latency is None:
                continue
            reference = min(r for r in (s.floor, best, s.latency) if r is not None)
            if s.latency > SLOW_FACTOR * reference and s.latency - reference > SLOW_MARGIN:
                out.add(d)
        return out

    def probe(self, router: str, destination: str) -> bool:
        """True (once per PROBE_INTERVAL) when a degraded destination is due a call."""
        s, now = self.seen(router, destination), time.monotonic()
        if now - s.probed < self._wall(PROBE_INTERVAL):
            return False
        s.probed = now
        return True

    def clear(self) -> None:
        self._seen.clear()

    def states(self) -> list[tuple[str, str, str]]:
        """(router ARN, destination ARN, state) for each destination a router has tried:
        `healthy`, `overloaded` (slow), or `unhealthy` (its last attempt failed)."""
        by_router: dict[str, list[str]] = {}
        for router, destination in list(self._seen):
            by_router.setdefault(router, []).append(destination)
        out = []
        for router, destinations in by_router.items():
            degraded = self.degraded(router, destinations)
            for d in destinations:
                state = "unhealthy" if self.seen(router, d).failing else "overloaded" if d in degraded else "healthy"
                out.append((router, d, state))
        return out

