"""The per-invocation fast path into the metric store: SageMaker's eight invocation metrics
of one (region, endpoint, variant or component) are summed in place for the current second,
and folded into the store as statistic sets when the second turns or before anything reads
the store. The store holds one bucket per second anyway, so nothing is lost; an invocation
costs a dict lookup and a few additions instead of eight datapoints (docs/performance.md,
`bench record`).

A variant of instance pools also counts each call under (EndpointName, VariantName,
InstanceType), the answering instance's type. During an update (UpdateEndpoint), a variant's
calls are also counted under (EndpointConfigName, EndpointName, VariantName), per fleet, so an
alarm can watch the new configuration alone, as SageMaker's deployment guardrails recipes do."""

from __future__ import annotations

import math
import threading
from typing import Callable

from sagemaker_emu.cloudwatch import sketch
from sagemaker_emu.cloudwatch.series import MetricStore

NAMESPACE = "AWS/SageMaker"
# Slots of an accumulator after [second, count]: (sum, min, max) of each varying metric, the
# sums of the three 0-or-1 error metrics, then the two latencies' percentile bins.
_SHARE, _MODEL, _OVERHEAD, _CONCURRENT, _ERRORS, _MODEL_BINS, _OVERHEAD_BINS = 2, 5, 8, 11, 14, 17, 18
_FRESH = [0.0, math.inf, -math.inf] * 4 + [0.0, 0.0, 0.0]

Key = tuple[str, str, str, str | None, str | None, str | None]  # region, endpoint, variant, component, config, type


class InvocationMetrics:
    def __init__(self, store_of: Callable[[str], MetricStore]) -> None:
        self.store_of = store_of
        self._lock = threading.Lock()
        self._acc: dict[Key, list] = {}

    def add(self, region: str, endpoint: str, variant: str, component: str | None, model_us: float,
            overhead_us: float, status: int, share: float, concurrency: float, now: float,
            config: str | None = None, instance_type: str | None = None) -> None:
        second = int(now)
        key = (region, endpoint, variant, component, config, instance_type)
        with self._lock:
            acc = self._acc.get(key)
            if acc is None or acc[0] != second:
                if acc is not None:
                    self._fold(key, acc)
                acc = self._acc[key] = [second, 0, *_FRESH, {}, {}]
            acc[1] += 1
            sketch.add(acc[_MODEL_BINS], model_us)
            sketch.add(acc[_OVERHEAD_BINS], overhead_us)
            for slot, value in ((_SHARE, share), (_MODEL, model_us), (_OVERHEAD, overhead_us),
                                (_CONCURRENT, concurrency)):
                acc[slot] += value
                if value < acc[slot + 1]:
                    acc[slot + 1] = value
                if value > acc[slot + 2]:
                    acc[slot + 2] = value
            if status >= 300:
                acc[_ERRORS + 2] += 1  # InvocationModelErrors
                acc[_ERRORS + (0 if status < 500 else 1)] += 1

    def fold(self) -> None:
        """Move everything summed so far into the store (before a read)."""
        with self._lock:
            pending, self._acc = self._acc, {}
            for key, acc in pending.items():
                self._fold(key, acc)

    def _fold(self, key: Key, acc: list) -> None:
        region, endpoint, variant, component, config, instance_type = key
        dims: list[tuple[tuple[str, str], ...]]
        if component is None:
            dims, per, concurrent = [(("EndpointName", endpoint), ("VariantName", variant))], \
                "InvocationsPerInstance", "ConcurrentRequestsPerModel"
            if config is not None:
                dims.append((("EndpointConfigName", config), ("EndpointName", endpoint), ("VariantName", variant)))
            if instance_type is not None:  # a variant of instance pools: each type's share of it too
                dims.append((("EndpointName", endpoint), ("InstanceType", instance_type), ("VariantName", variant)))
        else:
            dims, per, concurrent = [(("InferenceComponentName", component),)], "InvocationsPerCopy", \
                "ConcurrentRequestsPerCopy"
        second, count = acc[0], acc[1]
        store = self.store_of(region)

        def put(name: str, unit: str, total: float, low: float, high: float, bins: sketch.Bins | None = None) -> None:
            for each in dims:
                store.put_statistics((NAMESPACE, name, each), unit, second, total, count, low, high, bins)

        put("Invocations", "None", count, 1.0, 1.0)
        put(per, "None", *acc[_SHARE:_SHARE + 3])
        put("ModelLatency", "Microseconds", acc[_MODEL], acc[_MODEL + 1], acc[_MODEL + 2], acc[_MODEL_BINS])
        put("OverheadLatency", "Microseconds", acc[_OVERHEAD], acc[_OVERHEAD + 1], acc[_OVERHEAD + 2],
            acc[_OVERHEAD_BINS])
        put(concurrent, "None", *acc[_CONCURRENT:_CONCURRENT + 3])
        for offset, name in enumerate(("Invocation4XXErrors", "Invocation5XXErrors", "InvocationModelErrors")):
            errors = acc[_ERRORS + offset]
            put(name, "None", errors, 0.0 if errors < count else 1.0, 1.0 if errors else 0.0)
