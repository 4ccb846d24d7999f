"""`sagemaker-emu/echo`: answers with the request's body and content type.

Stateful sessions: `SessionId: NEW_SESSION` opens one (an hour long); a request in a session
whose body is `CLOSE` closes it.

Environment: `ECHO_LATENCY_MS` (fixed delay, default 0) and `ECHO_LATENCY_JITTER_MS`
(plus a uniform random 0..jitter, default 0), seeded by the server's `--seed`.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from sagemaker_emu.worker.builtin.knobs import number
from sagemaker_emu.worker.contract import Invocation, Model, Reply

SESSION_SECONDS = 3600


@dataclass
class Echo(Model):
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
            headers=self._session_headers(invocation),
        )

    def _session_headers(self, invocation: Invocation) -> dict[str, str]:
        session = invocation.headers.get("x-amzn-sagemaker-session-id")
        if session == "NEW_SESSION":
            with self._lock:
                new_id = "%032x" % self.rng.getrandbits(128)
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + SESSION_SECONDS))
            return {"X-Amzn-SageMaker-New-Session-Id": f"{new_id}; Expires={expires}"}
        if session and invocation.body.strip() == b"CLOSE":
            return {"X-Amzn-SageMaker-Closed-Session-Id": session}
        return {}
