import random
from collections import Counter

from sagemaker_emu.routing.strategies import (
    Candidate,
    LeastOutstandingStrategy,
    RandomStrategy,
    RouteRequest,
    strategy_for,
)

REQ = RouteRequest(body=b"")


def candidates(*loads):
    return [Candidate(f"i{n}", load) for n, load in enumerate(loads)]


def test_random_is_uniform_and_seeded():
    picks = [RandomStrategy().pick(REQ, candidates(0, 0, 0), random.Random(5)).instance_id for _ in range(3)]
    assert picks == [RandomStrategy().pick(REQ, candidates(0, 0, 0), random.Random(5)).instance_id for _ in range(3)]
    rng = random.Random(1)
    counts = Counter(RandomStrategy().pick(REQ, candidates(0, 5, 9), rng).instance_id for _ in range(3000))
    assert all(900 <= counts[i] <= 1100 for i in ("i0", "i1", "i2"))


def test_least_outstanding_picks_the_least_loaded():
    assert LeastOutstandingStrategy().pick(REQ, candidates(3, 1, 2), random.Random(0)).instance_id == "i1"


def test_least_outstanding_breaks_ties_at_random():
    rng = random.Random(2)
    counts = Counter(LeastOutstandingStrategy().pick(REQ, candidates(1, 0, 0, 4), rng).instance_id for _ in range(1000))
    assert set(counts) == {"i1", "i2"} and min(counts.values()) > 400


def test_default_strategy_is_random():
    assert isinstance(strategy_for({}), RandomStrategy)
    assert isinstance(strategy_for({"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}), LeastOutstandingStrategy)
