"""Stateful sessions: which instance opened each session, until it closes or expires.

A request with `SessionId: NEW_SESSION` is routed as usual; if the container answers with
`X-Amzn-SageMaker-New-Session-Id: <id>; Expires=<UTC time>`, later requests carrying that id
go to the same variant and instance. `X-Amzn-SageMaker-Closed-Session-Id` ends it.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from sagemaker_emu.errors import InvalidInput

NEW_SESSION = "NEW_SESSION"


@dataclass(frozen=True)
class Session:
    variant: str
    instance_id: str
    expires: float  # epoch seconds
    route: str = ""  # the fleet key its instance is under: the variant, or an inference component's


def parse_new_session(header: str) -> tuple[str, float] | None:
    """`abc; Expires=2026-11-26T20:00:00Z` -> ("abc", epoch seconds); None if malformed."""
    session_id, _, rest = header.partition(";")
    rest = rest.strip()
    if not session_id.strip() or not rest.startswith("Expires="):
        return None
    try:
        expires = dt.datetime.strptime(rest[len("Expires="):], "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return session_id.strip(), expires.replace(tzinfo=dt.timezone.utc).timestamp()


class SessionTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[tuple, dict[str, Session]] = {}

    def find(self, endpoint_key: tuple, endpoint_name: str, session_id: str, now: float) -> Session:
        with self._lock:
            session = self._sessions.get(endpoint_key, {}).get(session_id)
            if session is not None and session.expires <= now:
                del self._sessions[endpoint_key][session_id]
                session = None
        if session is None:
            raise InvalidInput(f"Session {session_id} is not an open session of endpoint {endpoint_name}.")
        return session

    def opened(self, endpoint_key: tuple, session_id: str, session: Session) -> None:
        with self._lock:
            self._sessions.setdefault(endpoint_key, {})[session_id] = session

    def closed(self, endpoint_key: tuple, session_id: str) -> None:
        with self._lock:
            self._sessions.get(endpoint_key, {}).pop(session_id, None)

    def forget(self, endpoint_key: tuple) -> None:
        """Drop every session of a deleted endpoint."""
        with self._lock:
            self._sessions.pop(endpoint_key, None)

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()
