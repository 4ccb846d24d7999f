"""In-flight accounting for one instance: the only place requests are counted.

A request is in flight from dispatch until its response is finished or abandoned; the
context manager makes every exit path (answer, ModelError, timeout, crash, client gone)
give the slot back exactly once.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator


class Saturated(Exception):
    """The instance already has as many calls in flight as its limit allows."""


@dataclass(frozen=True)
class LoadSnapshot:
    in_flight: int
    served: int
    errors: int


class Load:
    """The counters of one instance. `mirror` (the instance) gets `in_flight` as a plain
    attribute whenever it changes: LEAST_OUTSTANDING_REQUESTS reads it from every candidate on
    every pick, and a plain attribute costs half of a property (docs/performance.md)."""

    def __init__(self, mirror: Any = None) -> None:
        self._lock = threading.Lock()
        self._mirror = mirror
        self.in_flight = 0
        self.served = 0
        self.errors = 0
        self.last_active = time.monotonic()  # when a call last ended (or the instance began): idle time

    @contextmanager
    def dispatch(self, limit: int | None = None) -> Iterator["SlotOutcome"]:
        """In flight for the block; with `limit`, Saturated (and nothing counted) when that
        many are in flight already: checked and counted at once, so a burst cannot pass it."""
        outcome = SlotOutcome()
        with self._lock:
            if limit is not None and self.in_flight >= limit:
                raise Saturated()
            self.in_flight += 1
            if self._mirror is not None:
                self._mirror.in_flight = self.in_flight
        try:
            yield outcome
        except BaseException:
            outcome.failed = True
            raise
        finally:
            with self._lock:
                self.in_flight -= 1
                self.last_active = time.monotonic()
                if self._mirror is not None:
                    self._mirror.in_flight = self.in_flight
                if not outcome.cancelled:
                    self.served += 1
                    self.errors += outcome.failed

    def snapshot(self) -> LoadSnapshot:
        with self._lock:
            return LoadSnapshot(self.in_flight, self.served, self.errors)


@dataclass
class SlotOutcome:
    failed: bool = False
    cancelled: bool = False  # given back before the request was sent
