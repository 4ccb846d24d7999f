"""Small helpers shared by the benchmarks: percentiles, closed-loop load, tables. The emulator
itself is started with the project's harness (sagemaker_emu/testing.py)."""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence


def listed(parser: argparse.ArgumentParser, value: str, allowed: Sequence[str], what: str) -> list[str]:
    """A comma-separated flag's names, each one of `allowed`; else the parser's error."""
    names = value.split(",")
    for name in names:
        if name not in allowed:
            parser.error(f"unknown {what} {name}: {', '.join(allowed)}")
    return names


def parse_points(parser: argparse.ArgumentParser, value: str) -> list[tuple[int, int]]:
    """`--points`: comma-separated USERSxINSTANCES."""
    try:
        return [(int(u), int(n)) for u, n in (p.split("x") for p in value.split(","))]
    except ValueError:
        parser.error(f"--points {value}: expected USERSxINSTANCES, comma separated (40x10,60x15)")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


@dataclass
class LoadResult:
    calls: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


def closed_loop(call: Callable[[int], None], threads: int, calls_per_thread: int) -> LoadResult:
    """`threads` users each make `calls_per_thread` calls back to back; `call(user)` does one."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    start_gate = threading.Barrier(threads + 1)

    def user(n: int) -> None:
        start_gate.wait()
        for _ in range(calls_per_thread):
            t0 = time.perf_counter()
            try:
                call(n)
            except Exception:
                errors[n] += 1
            latencies[n].append((time.perf_counter() - t0) * 1000)

    workers = [threading.Thread(target=user, args=(n,), daemon=True) for n in range(threads)]
    for w in workers:
        w.start()
    start_gate.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    seconds = time.perf_counter() - t0
    merged = sorted(x for per in latencies for x in per)
    return LoadResult(calls=len(merged), errors=sum(errors), seconds=seconds, latencies_ms=merged)


def table(headers: Sequence[object], rows: Sequence[Sequence[object]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).rjust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *map(line, rows)])


def proc_status(pid: int) -> dict[str, int]:
    """/proc/<pid>/status's numeric fields (VmRSS, VmHWM in kB; Threads)."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[name] = int(parts[0])
    return values
