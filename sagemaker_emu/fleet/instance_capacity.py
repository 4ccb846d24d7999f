"""How many instances of each type can still be had: the emulator's stand-in for AWS's
capacity in a Region, which SageMaker meets as an insufficient capacity error (ICE).

Unlimited unless `serve --capacity ml.p5.48xlarge=0` (or `POST /_emu/capacity`) limits a type.
A limit is not a quota: a quota refuses the API call, a capacity shortage is found while
provisioning, and instance pools fall back to the next type (fleet/fleet.py). Every instance
and every inference-component host holds one unit of its type from its start to its stop.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Iterable

ICE = ("Unable to provision requested ML compute capacity due to InsufficientInstanceCapacity error for "
       "instance type {types}. Please retry using a different ML instance type or after some time.")


class InstanceCapacity:
    def __init__(self, limits: dict[str, int] | None = None) -> None:
        self._given = dict(limits or {})  # the server's own (--capacity), which a reset restores
        self._limits = dict(self._given)
        self._used: Counter[str] = Counter()
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, specs: Iterable[str]) -> "InstanceCapacity":
        """From `TYPE=N` strings (`ml.p5.48xlarge=0`); ValueError on anything else."""
        limits = {}
        for spec in specs:
            name, sep, value = spec.partition("=")
            if not sep or not name.strip().startswith("ml.") or not value.strip().isdigit():
                raise ValueError(f"--capacity wants TYPE=COUNT (ml.p5.48xlarge=0), not {spec!r}")
            limits[name.strip()] = int(value)
        return cls(limits)

    def take(self, instance_type: str) -> bool:
        """One more instance of the type, if there is one to be had."""
        with self._lock:
            limit = self._limits.get(instance_type)
            if limit is not None and self._used[instance_type] >= limit:
                return False
            self._used[instance_type] += 1
            return True

    def give(self, instance_type: str) -> None:
        with self._lock:
            if self._used[instance_type] > 0:
                self._used[instance_type] -= 1

    def limit(self, instance_type: str, count: int | None) -> None:
        """Limit the type to `count` instances in all (None: unlimited). Instances already
        running keep running; only new ones are refused."""
        with self._lock:
            if count is None:
                self._limits.pop(instance_type, None)
            else:
                self._limits[instance_type] = count

    def reset(self) -> None:
        """Back to the server's own limits (instances are all stopped by then)."""
        with self._lock:
            self._limits = dict(self._given)

    def view(self) -> dict[str, dict[str, int | None]]:
        with self._lock:
            types = sorted(set(self._limits) | {t for t, n in self._used.items() if n})
            return {t: {"limit": self._limits.get(t), "in_use": self._used[t]} for t in types}
