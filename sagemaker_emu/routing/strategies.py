"""Routing strategies behind one interface.

A strategy gets the request and a snapshot of the variant's routable instances and returns
the one to use. Strategies do no I/O and never count requests themselves (fleet/load.py
owns that); the only randomness is the seeded generator they are handed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol, Sequence


@dataclass(frozen=True)
class Candidate:
    instance_id: str
    in_flight: int


@dataclass(frozen=True)
class RouteRequest:
    body: bytes = b""


class Strategy(Protocol):
    def pick(self, request: RouteRequest, candidates: Sequence[Candidate], rng: random.Random) -> Candidate: ...


class RandomStrategy:
    """Each request to a uniformly random instance (SageMaker's default)."""

    def pick(self, request: RouteRequest, candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
        return candidates[rng.randrange(len(candidates))]


class LeastOutstandingStrategy:
    """The instance with the fewest requests in flight; ties broken at random."""

    def pick(self, request: RouteRequest, candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
        fewest = min(c.in_flight for c in candidates)
        tied = [c for c in candidates if c.in_flight == fewest]
        return tied[rng.randrange(len(tied))] if len(tied) > 1 else tied[0]


_STRATEGIES = {
    "RANDOM": RandomStrategy,
    "LEAST_OUTSTANDING_REQUESTS": LeastOutstandingStrategy,
    # PREFIX_AWARE and KV_AWARE route as LEAST_OUTSTANDING_REQUESTS until their own
    # classes land (issue 4); SageMaker documents that fallback for KV_AWARE.
    "PREFIX_AWARE": LeastOutstandingStrategy,
    "KV_AWARE": LeastOutstandingStrategy,
}


def strategy_for(routing_config: dict) -> Strategy:
    return _STRATEGIES[routing_config.get("RoutingStrategy", "RANDOM")]()
