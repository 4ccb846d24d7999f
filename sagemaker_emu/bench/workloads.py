"""Workload presets for `bench routing`: what each simulated user asks, and how long it takes.

Every preset drives `sagemaker-emu/llm-sim`, whose solo service time is
20 ms + 0.25 ms per input token + 25 ms per output token (its defaults) before time scaling.
"""

from __future__ import annotations

import json
import math
import random


def user_rng(seed: int, user: int) -> random.Random:
    """The generator behind one simulated user's requests (and think times): `bench routing`'s
    users and `bench queueing`'s model draw the same ones."""
    return random.Random(seed * 100003 + user)


def lognormal_tokens(rng: random.Random, median: float, sigma: float, cap: int) -> int:
    return max(1, min(cap, round(median * math.exp(rng.gauss(0.0, sigma)))))


class Workload:
    shares_prefixes = False  # whether prompts repeat, so the bench reports prefix-cache hits

    def __init__(self, name: str, summary: str) -> None:
        self.name = name
        self.summary = summary

    def request(self, rng: random.Random, user: int) -> tuple[bytes, int]:
        """A request body and its number of output tokens."""
        raise NotImplementedError


def words(rng: random.Random, n: int) -> str:
    # Distinct random words: no two requests share a prefix by accident.
    return " ".join(f"w{rng.getrandbits(32):x}" for _ in range(n))


class Codegen(Workload):
    """A code model answering English prompts: heavy-tailed output lengths."""

    def request(self, rng: random.Random, user: int) -> tuple[bytes, int]:
        n_in = lognormal_tokens(rng, 300, 0.8, 4096)
        n_out = lognormal_tokens(rng, 120, 0.8, 2048)
        return json.dumps({"inputs": words(rng, n_in), "parameters": {"max_new_tokens": n_out}}).encode(), n_out


class ChatSharedPrefix(Workload):
    """Many users behind a few long system prompts: what prefix and KV-cache routing are for."""

    SYSTEM_PROMPTS = 8
    SYSTEM_TOKENS = 1500
    shares_prefixes = True

    def __init__(self, name: str, summary: str, system_prompts: int = SYSTEM_PROMPTS) -> None:
        super().__init__(name, summary)
        rng = random.Random(20231130)  # the same system prompts in every run
        self.systems = [words(rng, self.SYSTEM_TOKENS) for _ in range(system_prompts)]

    def request(self, rng: random.Random, user: int) -> tuple[bytes, int]:
        system = self.systems[user % len(self.systems)]  # each user talks to one assistant
        question = words(rng, lognormal_tokens(rng, 40, 0.5, 400))
        n_out = lognormal_tokens(rng, 60, 0.5, 1024)
        return json.dumps({"inputs": system + " " + question, "parameters": {"max_new_tokens": n_out}}).encode(), n_out


class LowLatency(Workload):
    """Short prompts, one to three output tokens: tens of milliseconds, little variance."""

    def request(self, rng: random.Random, user: int) -> tuple[bytes, int]:
        n_out = rng.randint(1, 3)
        return json.dumps({"inputs": words(rng, rng.randint(15, 30)), "parameters": {"max_new_tokens": n_out}}).encode(), n_out


WORKLOADS: dict[str, Workload] = {
    "codegen": Codegen("codegen", "input ~LogN(300, 0.8) <= 4096, output ~LogN(120, 0.8) <= 2048 tokens; "
                                  "median ~3.1 s, p99 ~19 s solo"),
    "chat-shared-prefix": ChatSharedPrefix("chat-shared-prefix", "8 system prompts of 1500 tokens, questions "
                                           "~LogN(40, 0.5), output ~LogN(60, 0.5); each user keeps one system prompt"),
    "low-latency": LowLatency("low-latency", "15-30 input tokens, 1-3 output tokens: ~50-100 ms solo"),
}
