"""What a model sees of an invocation and what it answers: the container contract's data."""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Callable, Iterable

# A worker exits with this code when its port was taken between the fleet choosing it and the
# worker binding it (another socket got it first); the fleet then starts it on another port.
EXIT_PORT_TAKEN = errno.EADDRINUSE


@dataclass
class Invocation:
    body: bytes
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    # True while the caller is still connected; long models poll it to stop early.
    connected: Callable[[], bool] = lambda: True
    model_name: str | None = None  # a multi-model container's loaded model (POST /models/<name>/invoke)


@dataclass
class Reply:
    body: bytes | Iterable[bytes] = b""
    status: int = 200
    content_type: str = "application/json"
    custom_attributes: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # more response headers (sessions)


class Model:
    """What every model a worker serves declares; the optional parts have defaults here, so
    the server asks no model whether it has them."""

    # How many invocations the instance runs at once; more wait in its queue (None: no limit).
    concurrency: int | None = None

    def healthy(self) -> bool:
        return True

    def invoke(self, invocation: Invocation) -> Reply:
        raise NotImplementedError

    def chat(self, invocation: Invocation) -> Reply | None:
        """`POST /v1/chat/completions`, OpenAI's Chat Completions, for a model whose server has
        it (SageMaker's OpenAI-compatible path sends the body there unchanged); None answers 404."""
        return None

    def get(self, path: str, query: dict[str, str]) -> Reply | None:
        """Another GET route the model serves (llm-sim's /kv-events); None answers 404."""
        return None

    def post(self, path: str, body: bytes) -> Reply | None:
        """A POST other than an invocation (a multi-model container's POST /models); None: 404."""
        return None

    def delete(self, path: str) -> Reply | None:
        """A DELETE (a multi-model container's DELETE /models/<name>); None answers 404."""
        return None
