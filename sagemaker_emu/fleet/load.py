"""In-flight accounting for one instance: the only place requests are counted.

A request is in flight from dispatch until its response is finished or abandoned; the
context manager makes every exit path (answer, ModelError, timeout, crash, client gone)
give the slot back exactly once.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class LoadSnapshot:
    in_flight: int
    served: int
    errors: int


class Load:
    """The counters of one instance. `mirror` (the instance) gets `in_flight` as a plain
    attribute whenever it changes: LEAST_OUTSTANDING_REQUESTS reads it from every candidate on
    every pick, and a plain attribute costs half of a property (docs/performance.md)."""

    def __init__(self, mirror: object | None = None) -> None:
        self._lock = threading.Lock()
        self._mirror = mirror
        self.in_flight = 0
        self.served = 0
        self.errors = 0

    @contextmanager
    def dispatch(self) -> Iterator["Outcome"]:
        outcome = Outcome()
        with self._lock:
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
                if self._mirror is not None:
                    self._mirror.in_flight = self.in_flight
                if not outcome.cancelled:
                    self.served += 1
                    self.errors += outcome.failed

    def snapshot(self) -> LoadSnapshot:
        with self._lock:
            return LoadSnapshot(self.in_flight, self.served, self.errors)


@dataclass
class Outcome:
    failed: bool = False
    cancelled: bool = False  # given back before the request was sent
