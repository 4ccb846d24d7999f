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


from sagemaker_emu.routing.strategies import HashRing, PrefixAwareStrategy  # noqa: E402


def prompt(shared: str, tail: str = "") -> bytes:
    return (shared * 2000)[:1024].encode() + tail.encode()


def test_prefix_aware_keeps_a_prefix_on_one_instance_whatever_follows():
    s = PrefixAwareStrategy(prefix_length=1024, threshold=4)
    pool = candidates(0, 0, 0, 0)
    owners = {s.pick(RouteRequest(prompt("system A ", f"question {n}")), pool, random.Random(n)).instance_id
              for n in range(50)}
    assert len(owners) == 1


def test_prefix_aware_spreads_different_prefixes():
    s = PrefixAwareStrategy(prefix_length=1024, threshold=4)
    pool = candidates(0, 0, 0, 0)
    counts = Counter(s.pick(RouteRequest(prompt(f"system {n} ")), pool, random.Random(0)).instance_id
                     for n in range(400))
    assert set(counts) == {"i0", "i1", "i2", "i3"} and min(counts.values()) > 50


def test_prefix_aware_spills_past_the_threshold_to_the_next_on_the_ring():
    s = PrefixAwareStrategy(prefix_length=1024, threshold=2)
    req = RouteRequest(prompt("hot prefix "))
    owner = s.pick(req, candidates(0, 0, 0, 0), random.Random(0)).instance_id
    busy = [Candidate(c.instance_id, 2 if c.instance_id == owner else 0) for c in candidates(0, 0, 0, 0)]
    spill = s.pick(req, busy, random.Random(0)).instance_id
    assert spill != owner
    assert all(s.pick(req, busy, random.Random(k)).instance_id == spill for k in range(10))  # the same second choice
    # Everyone at the threshold: least outstanding among them.
    loads = {"i0": 3, "i1": 2, "i2": 5, "i3": 4}
    assert s.pick(req, [Candidate(i, n) for i, n in loads.items()], random.Random(0)).instance_id == "i1"


def test_prefix_aware_with_one_instance_just_uses_it():
    s = PrefixAwareStrategy(prefix_length=1024, threshold=1)
    assert s.pick(RouteRequest(prompt("x")), [Candidate("only", 9)], random.Random(0)).instance_id == "only"


def test_prefix_aware_id_scopes_prefixes():
    s = PrefixAwareStrategy(prefix_length=1024, threshold=4)
    pool = candidates(0, 0, 0, 0, 0, 0, 0, 0)
    placements = {s.pick(RouteRequest(prompt("same prompt "), f"tenant-{n}"), pool, random.Random(0)).instance_id
                  for n in range(40)}
    assert len(placements) > 1


def test_scale_in_moves_only_the_prefixes_of_the_instance_that_left():
    before = HashRing([f"i{n}" for n in range(5)])
    after = HashRing([f"i{n}" for n in range(4)])  # i4 left
    keys = range(0, 2**32, 2**32 // 5000)
    moved = [k for k in keys if next(before.walk(k)) != next(after.walk(k))]
    assert all(next(before.walk(k)) == "i4" for k in moved)
    assert 0.1 < len(moved) / len(keys) < 0.3  # about 1/5 of the keys, all of them i4's


def test_prefix_aware_strategy_from_config():
    s = strategy_for({"RoutingStrategy": "PREFIX_AWARE",
                      "PrefixAwareRoutingConfig": {"PrefixLength": 2048, "ConcurrencyThreshold": 3}})
    assert isinstance(s, PrefixAwareStrategy) and (s.prefix_length, s.threshold) == (2048, 3)


import json  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

from sagemaker_emu.kv import blocks as kvblocks  # noqa: E402
from sagemaker_emu.routing.strategies import KvAwareStrategy  # noqa: E402


@dataclass
class CacheHolder:
    instance_id: str
    in_flight: int
    kv_blocks: frozenset = field(default_factory=frozenset)


LONG_PROMPT = " ".join(f"token{n}" for n in range(320))  # 20 blocks of 16


def kv_request(text=LONG_PROMPT):
    return RouteRequest(json.dumps({"inputs": text, "parameters": {"max_new_tokens": 5}}).encode())


def cached(text, blocks=None):
    hashes = kvblocks.block_hashes(kvblocks.tokens(text))
    return frozenset(hashes[:blocks] if blocks is not None else hashes)


def test_kv_aware_prefers_the_instance_holding_the_longest_prefix():
    pool = [CacheHolder("i0", 0), CacheHolder("i1", 0, cached(LONG_PROMPT, 5)), CacheHolder("i2", 0, cached(LONG_PROMPT))]
    assert KvAwareStrategy().pick(kv_request(), pool, random.Random(0)).instance_id == "i2"


def test_kv_aware_reads_the_prompt_of_an_openai_text_completion():
    pool = [CacheHolder("i0", 0), CacheHolder("i1", 1, cached(LONG_PROMPT))]  # unread, least outstanding wins
    completion = RouteRequest(json.dumps({"prompt": LONG_PROMPT, "max_tokens": 5}).encode())  # vLLM's format
    assert KvAwareStrategy().pick(completion, pool, random.Random(0)).instance_id == "i1"


def test_kv_aware_weighs_the_match_against_load():
    s = KvAwareStrategy(load_weight_tokens=256)
    # i1 holds all 320 tokens but has 2 requests in flight (cost 512); i0 holds nothing (cost 320).
    pool = [CacheHolder("i0", 0), CacheHolder("i1", 2, cached(LONG_PROMPT))]
    assert s.pick(kv_request(), pool, random.Random(0)).instance_id == "i0"
    pool = [CacheHolder("i0", 0), CacheHolder("i1", 1, cached(LONG_PROMPT))]  # cost 256 < 320
    assert s.pick(kv_request(), pool, random.Random(0)).instance_id == "i1"


def test_kv_aware_without_a_match_is_least_outstanding():
    pool = [CacheHolder("i0", 3), CacheHolder("i1", 1, cached("something else entirely " * 20)), CacheHolder("i2", 2)]
    assert KvAwareStrategy().pick(kv_request(), pool, random.Random(0)).instance_id == "i1"
    not_json = RouteRequest(b"\x00binary")
    assert KvAwareStrategy().pick(not_json, pool, random.Random(0)).instance_id == "i1"
    plain = [Candidate("a", 2), Candidate("b", 0)]  # containers that report nothing
    assert KvAwareStrategy().pick(kv_request(), plain, random.Random(0)).instance_id == "b"


def test_kv_aware_only_counts_leading_blocks():
    hashes = kvblocks.block_hashes(kvblocks.tokens(LONG_PROMPT))
    middle_only = frozenset(hashes[5:])  # without the first blocks nothing is reusable
    pool = [CacheHolder("i0", 0, middle_only), CacheHolder("i1", 0, frozenset(hashes[:2]))]
    assert KvAwareStrategy().pick(kv_request(), pool, random.Random(0)).instance_id == "i1"


@dataclass
class BigBlockHolder(CacheHolder):
    kv_block_tokens: int = 32


def test_kv_aware_hashes_the_prompt_in_each_instances_block_size():
    """Issue 12: an instance with 32-token blocks reports hashes of 32 tokens; compared with
    16-token hashes it never matched, and KV_AWARE silently became least-outstanding."""
    big = frozenset(kvblocks.block_hashes(kvblocks.tokens(LONG_PROMPT), 32))
    pool = [CacheHolder("i0", 0), BigBlockHolder("i1", 1, big), CacheHolder("i2", 0)]
    s = KvAwareStrategy()
    assert s.pick(kv_request(), pool, random.Random(0)).instance_id == "i1"
    prepared = s.prepare(kv_request(), pool)
    assert set(prepared.prompt_blocks) == {16, 32}
    assert s.pick(prepared, pool, random.Random(0)).instance_id == "i1"


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                    max_leaves=12)
PART = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"])}, optional={"text": JSON})
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]) | JSON},
                                optional={"content": st.lists(PART, max_size=3) | JSON})
BODY = JSON | st.fixed_dictionaries({}, optional={"inputs": JSON, "prompt": JSON,
                                                  "messages": st.lists(MESSAGE, max_size=3) | JSON})


@settings(max_examples=300, derandomize=True, deadline=None)
@given(BODY)
def test_reading_a_prompt_never_raises_whatever_the_body(body):
    """The router reads every call's body for PREFIX_AWARE and KV_AWARE: any JSON must give a
    prompt or None, never an exception (a content part's number for text once gave a 500)."""
    assert kvblocks.prompt_text(body) is None or isinstance(kvblocks.prompt_text(body), str)
