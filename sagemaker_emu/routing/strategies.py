"""Routing strategies behind one interface.

A strategy gets the request and the variant's routable instances, each exposing
`instance_id` and `in_flight` (a `Candidate` in tests, a fleet instance in the emulator, read
at the moment of the pick), and returns the one to use. Strategies do no I/O and never count
requests themselves (fleet/load.py owns that).

Each variant (or inference component) has its own strategy object, as each of Envoy's load
balancers has its own state: its seeded generator and its lock, so decisions on one endpoint
never wait for another's, and a seeded run repeats its decisions per variant. `pick` is pure
given the generator it is handed (tests and the pick benchmark call it); `choose` is the
runtime's call, under the strategy's lock. The fleet hands over the same tuple until an
instance's health changes, so a strategy may cache what it derives from the membership
(PREFIX_AWARE's ring).
"""

from __future__ import annotations

import bisect
import json
import random
import threading
import zlib
from dataclasses import dataclass, replace
from typing import AbstractSet, Sequence

from sagemaker_emu.kv.blocks import DEFAULT_BLOCK_TOKENS, block_hashes, prompt_text, tokens


@dataclass(frozen=True)
class Candidate:
    instance_id: str
    in_flight: int


@dataclass(frozen=True)
class RouteRequest:
    body: bytes = b""
    prefix_aware_id: str | None = None  # X-Amzn-SageMaker-Prefix-Aware-Id: scopes prefixes per caller
    # KV_AWARE's block hashes of the prompt, by block size (tokens per block), from `prepare`
    prompt_blocks: dict[int, tuple[str, ...]] | None = None
    chat: bool = False  # an OpenAI Chat Completions body (SageMaker's OpenAI-compatible path)
    prefix: bytes | None = None  # PREFIX_AWARE's key material, from `prepare` (a chat body's messages)


class Strategy:
    """What every strategy declares; the optional hooks have defaults here, so the runtime asks
    no strategy whether it has them. `seed`: None, or anything `random.Random` takes."""

    def __init__(self, seed: object = None) -> None:
        self._rng = random.Random(seed)  # type: ignore[arg-type]
        self._lock = threading.Lock()

    def prepare(self, request: RouteRequest, candidates: Sequence = ()) -> RouteRequest:
        """Per-request work done before the decision's lock (hashing a prompt); none by default."""
        return request

    def choose(self, request: RouteRequest, candidates: Sequence):
        """The runtime's decision: one at a time per strategy, so seeded choices repeat."""
        with self._lock:
            return self.pick(request, candidates, self._rng)

    def pick(self, request: RouteRequest, candidates: Sequence, rng: random.Random):
        raise NotImplementedError

    def answered(self, request: RouteRequest, chosen) -> None:
        """After `chosen` answered the request with success; nothing by default."""


class RandomStrategy(Strategy):
    """Each request to a uniformly random instance (SageMaker's default)."""

    def pick(self, request: RouteRequest, candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
        return candidates[rng.randrange(len(candidates))]


class LeastOutstandingStrategy(Strategy):
    """The instance with the fewest requests in flight; ties broken at random."""

    def pick(self, request: RouteRequest, candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
        return _least_outstanding(candidates, rng)


def _least_outstanding(candidates: Sequence, rng: random.Random):
    fewest, tied = None, []
    for c in candidates:  # one pass: in_flight is read once per instance
        n = c.in_flight
        if fewest is None or n < fewest:
            fewest, tied = n, [c]
        elif n == fewest:
            tied.append(c)
    return tied[rng.randrange(len(tied))] if len(tied) > 1 else tied[0]


VNODES = 64  # ring points per instance: evens out the share of prefixes each one owns


def _point(data: bytes) -> int:
    # crc32 is stable across processes (unlike hash()), so placements repeat run to run;
    # the second pass spreads nearby keys over the whole 32-bit ring.
    return zlib.crc32(data, zlib.crc32(data) ^ 0x9E3779B9)


class HashRing:
    """Consistent hashing: a key belongs to the first instance point clockwise from it.

    When an instance joins or leaves, only the keys it owned (about 1/n of them) move."""

    def __init__(self, instance_ids: Sequence[str]) -> None:
        points = sorted((_point(f"{iid}#{v}".encode()), iid) for iid in instance_ids for v in range(VNODES))
        self._hashes = [h for h, _ in points]
        self._owners = [iid for _, iid in points]

    def walk(self, key: int):
        """Instance ids in ring order from `key`'s owner, each once."""
        start = bisect.bisect(self._hashes, key)
        seen: set[str] = set()
        n = len(self._owners)
        for k in range(n):
            iid = self._owners[(start + k) % n]
            if iid not in seen:
                seen.add(iid)
                yield iid


class PrefixAwareStrategy(Strategy):
    """Requests whose first `prefix_length` body bytes are equal go to the same instance.

    The owner is found on a consistent-hash ring of the routable instances. When the owner
    already has `threshold` requests in flight, the request goes to the next instance on the
    ring that is under the threshold (so a hot prefix spills to the same second instance,
    which warms its cache too); when every instance is at the threshold, to the least loaded.
    With one instance there is nothing to choose."""

    def __init__(self, prefix_length: int, threshold: int, seed: object = None) -> None:
        super().__init__(seed)
        self.prefix_length = prefix_length
        self.threshold = threshold
        self._ring_for: Sequence | None = None
        self._ring = HashRing(())
        self._by_id: dict = {}

    def _ring_of(self, candidates: Sequence) -> HashRing:
        if candidates is not self._ring_for:  # the fleet's tuple changes only with membership
            by_id = {c.instance_id: c for c in candidates}
            if by_id.keys() != self._by_id.keys():
                self._ring = HashRing(sorted(by_id))
            self._by_id, self._ring_for = by_id, candidates
        return self._ring

    def prepare(self, request: RouteRequest, candidates: Sequence = ()) -> RouteRequest:
        """On the OpenAI-compatible path PrefixLength counts characters of the messages' text
        (botocore's documentation of PrefixAwareRoutingConfig), not bytes of the body."""
        if not request.chat:
            return request
        text = KvAwareStrategy.prompt(request.body) or ""
        return replace(request, prefix=text[: self.prefix_length].encode())

    def key(self, request: RouteRequest) -> int:
        scope = (request.prefix_aware_id or "").encode() + b"\0"
        material = request.prefix if request.prefix is not None else request.body[: self.prefix_length]
        return _point(scope + material)

    def pick(self, request: RouteRequest, candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
        if len(candidates) == 1:
            return candidates[0]
        ring = self._ring_of(candidates)
        by_id = self._by_id
        for iid in ring.walk(self.key(request)):
            if by_id[iid].in_flight < self.threshold:
                return by_id[iid]
        return _least_outstanding(candidates, rng)


class KvAwareStrategy(Strategy):
    """The instance whose KV cache already holds the longest start of the prompt, weighed
    against how busy each instance is.

    Each instance costs the prompt tokens it would have to prefill (those past its cached
    leading blocks) plus `load_weight_tokens` for every request it has in flight; the
    cheapest wins, ties going to the less busy, then at random. When no instance holds any
    of the prompt (or the body has no `inputs` text) this is LEAST_OUTSTANDING_REQUESTS.
    Instances expose `kv_blocks`: the block hashes their cache reported, plus the prompts sent
    to them since."""

    def __init__(self, block_tokens: int = DEFAULT_BLOCK_TOKENS, load_weight_tokens: int = 256,
                 seed: object = None) -> None:
        super().__init__(seed)
        self.block_tokens = block_tokens
        self.load_weight_tokens = load_weight_tokens

    def prepare(self, request: RouteRequest, candidates: Sequence = ()) -> RouteRequest:
        """Tokenise and hash the prompt: the costly part, done before the decision's lock. Once
        per block size the candidates' caches report, so that hashes compare like with like."""
        text = self.prompt(request.body)
        toks = tokens(text) if text else []
        sizes = {getattr(c, "kv_block_tokens", self.block_tokens) for c in candidates} | {self.block_tokens}
        return replace(request, prompt_blocks={size: tuple(block_hashes(toks, size)) for size in sizes})

    @staticmethod
    def prompt(body: bytes) -> str | None:
        try:
            request = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
            return None
        return prompt_text(request)

    def pick(self, request: RouteRequest, candidates: Sequence, rng: random.Random):
        if len(candidates) == 1:
            return candidates[0]
        sizes = [getattr(c, "kv_block_tokens", self.block_tokens) for c in candidates]
        by_size = request.prompt_blocks
        if by_size is None or not by_size.keys() >= set(sizes):  # not prepared for these candidates
            by_size = self.prepare(request, candidates).prompt_blocks
        assert by_size is not None  # prepare() fills it
        matches = [_leading(by_size[size], getattr(c, "kv_blocks", frozenset())) for size, c in zip(sizes, candidates)]
        if not any(matches):
            return _least_outstanding(candidates, rng)
        # Uncached prompt tokens (counted in whole blocks of each instance's size), plus load.
        costs = [(len(by_size[size]) - m) * size + c.in_flight * self.load_weight_tokens
                 for size, m, c in zip(sizes, matches, candidates)]
        best = min(costs)
        tied = [c for cost, c in zip(costs, candidates) if cost == best]
        return _least_outstanding(tied, rng)


    def answered(self, request: RouteRequest, chosen) -> None:
        """The prompt is in the instance's cache now: the next pick sees it there."""
        chosen.served_prompt((request.prompt_blocks or {}).get(chosen.kv_block_tokens, ()))


def _leading(hashes: Sequence[str], blocks: AbstractSet[str]) -> int:
    n = 0
    for h in hashes:
        if h not in blocks:
            break
        n += 1
    return n


def strategy_for(routing_config: dict, seed: object = None) -> Strategy:
    """A new strategy object for one variant (strategies keep per-variant state); `seed`:
    None, or what the variant's seeded generator starts from."""
    name = routing_config.get("RoutingStrategy", "RANDOM")
    if name == "PREFIX_AWARE":
        cfg = routing_config["PrefixAwareRoutingConfig"]
        return PrefixAwareStrategy(cfg["PrefixLength"], cfg["ConcurrencyThreshold"], seed=seed)
    if name == "LEAST_OUTSTANDING_REQUESTS":
        return LeastOutstandingStrategy(seed)
    if name == "KV_AWARE":
        return KvAwareStrategy(seed=seed)
    return RandomStrategy(seed)
