"""The endpoint path's stages, each run alone against a stand-in fleet and target (the fleet
is the neighbour here): what each writes into the Outcome, and what it refuses."""

import re
from types import SimpleNamespace

import pytest

from sagemaker_emu.errors import InvalidInput
from sagemaker_emu.fleet.api import component_key
from sagemaker_emu.metrics import Metrics
from sagemaker_emu.routing.strategies import Candidate, LeastOutstandingStrategy, RandomStrategy
from sagemaker_emu.runtime.faults import Faults
from sagemaker_emu.runtime.request import InvokeRequest, Outcome
from sagemaker_emu.runtime.sessions import SessionTable
from sagemaker_emu.runtime.stages import NO_COPIES, Dice, Stages


class Fleet:
    def __init__(self, instances: dict[str, tuple]) -> None:
        self.by_key = instances
        self.routers = {key: LeastOutstandingStrategy(seed=1) for key in instances}

    def instances(self, key):
        return self.by_key.get(key, ())

    def router(self, key):
        return self.routers[key]

    def serverless(self, key):
        return None

    def multi_model(self, key):
        return None


def target(fleet, variants=(("a", 1.0),), components=None, name="ep"):
    return SimpleNamespace(name=name, region="us-east-1", account="1", arn="arn", created=0.0, fleet=fleet,
                           variants=[SimpleNamespace(name=n, weight=w) for n, w in variants],
                           components=components or {}, hosts_components=bool(components), green=None)


def stages(seed=1):
    return Stages(directory=None, metrics=Metrics(), sessions=SessionTable(), faults=Faults(seed), dice=Dice(seed))


def request(**fields):
    return InvokeRequest(endpoint_name="ep", body=b"{}", region="us-east-1", **fields)


def test_a_component_is_routed_among_its_base_copies_and_an_adapter_is_named():
    adapter = SimpleNamespace(name="lora", variant="v", copies=2, served_by="base")
    out = Outcome(target=target(Fleet({}), components={"lora": adapter}))
    stages().component(request(inference_component="lora"), out)
    assert (out.variant, out.key, out.adapter, out.component) == ("v", component_key("base"), "lora", "lora")


def test_a_component_without_copies_is_refused_and_counted_as_no_capacity():
    empty = SimpleNamespace(name="ic", variant="v", copies=0, served_by="ic")
    out = Outcome(target=target(Fleet({}), components={"ic": empty}))
    with pytest.raises(InvalidInput, match=re.escape(NO_COPIES)):
        stages().component(request(inference_component="ic"), out)
    assert out.no_capacity and out.component == "ic"


def test_variant_weights_are_drawn_per_endpoint_and_repeat_with_the_seed():
    fleet = Fleet({})
    draws = []
    for _ in range(2):
        s, seen = stages(seed=7), []
        for _ in range(20):
            out = Outcome(target=target(fleet, variants=(("a", 1.0), ("b", 1.0))))
            s.variant(request(), out)
            seen.append(out.key)
        draws.append(seen)
    assert draws[0] == draws[1] and set(draws[0]) == {"a", "b"}
    out = Outcome(target=target(fleet, variants=(("a", 1.0), ("b", 1.0))))
    with pytest.raises(InvalidInput, match="does not have a production variant named c"):
        stages().variant(request(target_variant="c"), out)


def test_no_routable_instance_stops_the_attempt_and_pick_asks_the_variants_strategy():
    busy, idle = (SimpleNamespace(instance_id=i, id=i, pid=None, in_flight=n) for i, n in (("i0", 3), ("i1", 0)))
    fleet = Fleet({"a": (busy, idle), "empty": ()})
    s = stages()
    out = Outcome(target=target(fleet), key="empty")
    assert s.candidates(request(), out) is False
    out = Outcome(target=target(fleet), key="a")
    assert s.candidates(request(), out) is True and out.pool_size == 2
    s.pick(request(), out)
    assert out.instance is idle and isinstance(out.router, LeastOutstandingStrategy)


def test_each_strategy_decides_with_its_own_generator():
    """No lock or generator shared between variants: two strategies with one seed make the
    same choices, whatever the other one did in between."""
    pool = [Candidate(f"i{k}", 0) for k in range(5)]
    one, two = RandomStrategy(seed="s"), RandomStrategy(seed="s")
    first = [one.choose(None, pool).instance_id for _ in range(10)]
    for _ in range(7):
        RandomStrategy(seed="other").choose(None, pool)
    assert [two.choose(None, pool).instance_id for _ in range(10)] == first
