"""`sagemaker-emu/echo`: answers with the request's body and content type.

Environment: `ECHO_LATENCY_MS` (fixed delay, default 0) and `ECHO_LATENCY_JITTER_MS`
(plus a uniform random 0..jitter, default 0), seeded by the server's `--seed`.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from sagemaker_emu.worker.builtin.knobs import number
from sagemaker_emu.worker.contract import Invocation, Reply


@dataclass
class Echo:
    latency_s: float = 0.0
    jitter_s: float = 0.0
    rng: random.Random = random.Random()
    concurrency: int | None = None  # echo has no queue of its own

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: dict[str, str], seed: int | None) -> "Echo":
        return cls(
            latency_s=number(env, "ECHO_LATENCY_MS", 0) / 1000,
            jitter_s=number(env, "ECHO_LATENCY_JITTER_MS", 0) / 1000,
            rng=random.Random(seed),
        )

    def healthy(self) -> bool:
        return True

    def invoke(self, invocation: Invocation) -> Reply:
        delay = self.latency_s
        if self.jitter_s:
            with self._lock:
                delay += self.rng.uniform(0, self.jitter_s)
        if delay:
            time.sleep(delay)
        return Reply(
            body=invocation.body,
            content_type=invocation.content_type or "application/octet-stream",
            custom_attributes=invocation.custom_attributes,
        )
