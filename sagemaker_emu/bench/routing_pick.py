"""`sagemaker-emu bench pick`: the cost of one routing decision, per strategy and fleet size
(instances, or an inference component's copies: the same to a strategy).

Each strategy picks from a snapshot of 1, 20 and 200 instances with random loads; the
PREFIX_AWARE request carries a 4 KiB body with a 2 KiB prefix. The hash ring is built once
per set of instances (as in the emulator), so it is outside the timed loop.
"""

from __future__ import annotations

import argparse
import random
import time

from sagemaker_emu.bench.stats import table
from sagemaker_emu.routing.strategies import RouteRequest, strategy_for

STRATEGIES: dict[str, dict] = {
    "RANDOM": {"RoutingStrategy": "RANDOM"},
    "LEAST_OUTSTANDING_REQUESTS": {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"},
    "PREFIX_AWARE": {"RoutingStrategy": "PREFIX_AWARE",
                     "PrefixAwareRoutingConfig": {"PrefixLength": 2048, "ConcurrencyThreshold": 8}},
}


class _Live:
    """Stands for a fleet instance or inference-component copy: `in_flight` is a plain
    attribute that fleet/load.py keeps current, as on the emulator's instances."""

    def __init__(self, instance_id: str, load: int) -> None:
        self.instance_id = instance_id
        self.in_flight = load


def time_pick(config: dict, instances: int, picks: int, seed: int = 1) -> float:
    """Microseconds per decision over the fleet's cached tuple of routable instances."""
    rng = random.Random(seed)
    strategy = strategy_for(config)
    fleet = tuple(_Live(f"AllTraffic-{n}", rng.randrange(10)) for n in range(instances))
    bodies = [bytes(rng.randrange(256) for _ in range(64)) * 64 for _ in range(16)]
    strategy.pick(RouteRequest(bodies[0]), fleet, rng)  # builds PREFIX_AWARE's ring once
    t0 = time.perf_counter()
    for k in range(picks):
        strategy.pick(RouteRequest(bodies[k % 16]), fleet, rng)
    return (time.perf_counter() - t0) / picks * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sagemaker-emu bench pick", description=__doc__)
    parser.add_argument("--picks", type=int, default=20000)
    args = parser.parse_args(argv)
    sizes = [1, 20, 200]
    rows = [[name, *(f"{time_pick(cfg, n, args.picks):.2f}" for n in sizes)] for name, cfg in STRATEGIES.items()]
    print(table(["strategy", *(f"{n} instances (us)" for n in sizes)], rows))
    return 0
