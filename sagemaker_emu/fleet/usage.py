"""CPU and memory of the real worker processes, as SageMaker's instance metrics (namespace
`/aws/sagemaker/Endpoints`, dimensions EndpointName and VariantName): each second, per
instance, CPUUtilization (percent of one core, summed over cores as AWS sums them) and
MemoryUtilization (resident memory as a percent of the instance type's memory), and for a
multi-model endpoint LoadedModelCount."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Iterable

from sagemaker_emu.fleet.placement import hardware

log = logging.getLogger("sagemaker_emu.fleet")

NAMESPACE = "/aws/sagemaker/Endpoints"
SAMPLE_S = 1.0
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def cpu_and_rss(pid: int) -> tuple[float, int] | None:
    """(CPU seconds used so far, resident bytes) of a process, from /proc; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            resident = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS, resident * _PAGE  # utime + stime


class UsageSampler:
    """`fleets()` gives (region, endpoint, fleet) for every running fleet; `sink(region,
    points)` takes the datapoints (the CloudWatch store)."""

    def __init__(self, fleets: Callable[[], Iterable[tuple[str, str, Any]]],
                 sink: Callable[[str, list], None], wall: Callable[[], float] = time.time) -> None:
        self.fleets = fleets
        self.sink = sink
        self.wall = wall
        self._last: dict[int, tuple[float, float]] = {}  # pid -> (cpu seconds, when), for the rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="usage-sampler")

    def start(self) -> "UsageSampler":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            try:
                self.sample()
            except Exception:  # a sampler must not die with one odd process
                log.exception("sampling worker CPU and memory failed")

    def sample(self) -> None:
        now, seen = self.wall(), set()
        for region, endpoint, fleet in self.fleets():
            points = []
            for instance in fleet.all_instances():
                if instance.pid is None or instance.variant.startswith("ic:"):  # copies: not per variant
                    continue
                usage = cpu_and_rss(instance.pid)
                if usage is None:
                    continue
                seen.add(instance.pid)
                cpu, rss = usage
                last = self._last.get(instance.pid)
                self._last[instance.pid] = (cpu, now)
                dims = (("EndpointName", endpoint), ("VariantName", instance.variant))
                if last is not None and now > last[1]:
                    percent = 100.0 * (cpu - last[0]) / (now - last[1])
                    points.append(((NAMESPACE, "CPUUtilization", dims), percent, "Percent", now))
                multi = fleet.multi_model(instance.variant)
                if multi is not None:  # a multi-model container's models, per instance
                    points.append(((NAMESPACE, "LoadedModelCount", dims), float(len(multi.loaded(instance))), "None", now))
                spec = hardware(instance.instance_type)
                if spec is not None:
                    points.append(((NAMESPACE, "MemoryUtilization", dims),
                                   100.0 * rss / (spec.memory_mb * 1024 * 1024), "Percent", now))
            if points:
                self.sink(region, points)
        for pid in [p for p in self._last if p not in seen]:
            del self._last[pid]
