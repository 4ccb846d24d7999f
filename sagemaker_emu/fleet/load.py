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
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0
        self.served = 0
        self.errors = 0

    @contextmanager
    def dispatch(self) -> Iterator["Outcome"]:
        outcome = Outcome()
        with self._lock:
            self.in_flight += 1
        try:
            yield outcome
        except BaseException:
            outcome.failed = True
            raise
        finally:
            with self._lock:
                self.in_flight -= 1
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
