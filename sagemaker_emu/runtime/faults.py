"""Fault and latency injection, for testing a client's retries and timeouts.

A rule applies to one endpoint, optionally narrowed to a variant or an instance, with a
probability (decided by a generator seeded from `--seed`) and optionally a number of times:

| kind | effect |
|---|---|
| `throttle` | the call fails with `ThrottlingException` (HTTP 400, "Rate exceeded"), which boto3 retries |
| `model_error` | the call fails with ModelError, OriginalStatusCode `status` (default 500), OriginalMessage `message` |
| `latency` | `latency_ms` more before the call is dispatched (counts in OverheadLatency) |
| `slow_instance` | `latency_ms` more on the chosen instance, while the request counts in flight there |
| `kill_instance` | the chosen instance's process is killed (SIGKILL) when the rule fires; the fleet restarts it |
"""

from __future__ import annotations

import builtins
import itertools
import os
import random
import signal
import threading
import time
from dataclasses import asdict, dataclass

from sagemaker_emu.errors import InvalidInput, Throttled

KINDS = ("throttle", "model_error", "latency", "slow_instance", "kill_instance")
# Numeric fields: (type, lowest, highest). An hour of latency is more than any client waits.
_NUMBERS = {"probability": (float, 0.0, 1.0), "times": (int, 0, 10**9), "status": (int, 400, 599),
            "latency_ms": (float, 0.0, 3_600_000.0)}
_FIELDS = {"kind", "endpoint", "variant", "instance", "probability", "times", "status", "message", "latency_ms"}


@dataclass
class Fault:
    id: str
    kind: str
    endpoint: str
    variant: str | None = None
    instance: str | None = None
    probability: float = 1.0
    times: int | None = None  # fire at most this many more times; None: no limit
    status: int = 500
    message: str = "Injected fault"
    latency_ms: float = 0.0

    def matches(self, endpoint: str, variant: str | None, instance: str | None) -> bool:
        return (self.endpoint == endpoint and self.variant in (None, variant)
                and self.instance in (None, instance) and self.times != 0)


def _number(name: str, value, kind: type, lo: float, hi: float):
    """`value` as `kind` within [lo, hi]; strings, booleans, NaN and infinities are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise InvalidInput(f"{name} must be {'an integer' if kind is int else 'a number'}.")
    if not lo <= value <= hi:  # also false for NaN
        raise InvalidInput(f"{name} must be between {lo:g} and {hi:g}.")
    return kind(value)


class Faults:
    def __init__(self, seed: int | None = None) -> None:
        self._rules: dict[str, Fault] = {}
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, spec: dict) -> Fault:
        unknown = set(spec) - _FIELDS
        if unknown:
            raise InvalidInput(f"Unknown fault fields: {', '.join(sorted(unknown))}.")
        if spec.get("kind") not in KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(KINDS)}.")
        if not isinstance(spec.get("endpoint"), str):
            raise InvalidInput("endpoint (the endpoint's name) is required.")
        rule = dict(spec)
        for name, (kind, lo, hi) in _NUMBERS.items():
            if name in rule and rule[name] is not None:
                rule[name] = _number(name, rule[name], kind, lo, hi)
        for name in ("variant", "instance", "message"):
            if name in rule and not isinstance(rule[name], (str, type(None))):
                raise InvalidInput(f"{name} must be a string.")
        if spec["kind"] in ("slow_instance", "latency") and rule.get("latency_ms", 0) <= 0:
            raise InvalidInput("latency_ms must be positive for latency faults.")
        with self._lock:
            fault = Fault(id=f"fault-{next(self._ids)}", **rule)
            self._rules[fault.id] = fault
        return fault

    def list(self) -> list[dict]:
        with self._lock:
            return [asdict(f) for f in self._rules.values()]

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            return self._rules.pop(fault_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def _fire(self, endpoint: str, variant: str | None, instance: str | None,
              kinds: tuple[str, ...]) -> "builtins.list[Fault]":
        if not self._rules:  # the common case costs one truth test
            return []
        fired = []
        with self._lock:
            for f in self._rules.values():
                if f.kind in kinds and f.matches(endpoint, variant, instance) and self._rng.random() < f.probability:
                    if f.times is not None:
                        f.times -= 1
                    fired.append(f)
        return fired

    def before_dispatch(self, endpoint: str, variant: str) -> Fault | None:
        """Apply latency; return a throttle or model_error fault that should fail the call."""
        failing = None
        for f in self._fire(endpoint, variant, None, ("throttle", "model_error", "latency")):
            if f.kind == "latency":
                time.sleep(f.latency_ms / 1000)
            elif failing is None:
                failing = f
        if failing is not None and failing.kind == "throttle":
            raise Throttled("Rate exceeded")
        return failing

    def on_instance(self, endpoint: str, variant: str, instance) -> None:
        """Faults of the chosen instance: slow it down, or kill its process."""
        for f in self._fire(endpoint, variant, instance.instance_id, ("slow_instance", "kill_instance")):
            if f.kind == "slow_instance":
                time.sleep(f.latency_ms / 1000)
            elif instance.pid:
                os.kill(instance.pid, signal.SIGKILL)
