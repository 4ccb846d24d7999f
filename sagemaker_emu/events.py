"""Typed events between the emulator's parts.

A part publishes what happened to it, as a small frozen dataclass its own package defines
(control/events.py: an endpoint or component deleted, a status changed; cloudwatch/alarms.py:
an alarm action due); the composition root subscribes the parts that must act on it. So no
part holds another's callback in an attribute, and the publisher does not know who listens.
Handlers run in the publisher's thread, in the order they subscribed.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, TypeVar

log = logging.getLogger("sagemaker_emu.events")
E = TypeVar("E")


class Events:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Callable[[Any], None]]] = {}
        self._lock = threading.Lock()

    def subscribe(self, kind: type[E], handler: Callable[[E], None]) -> None:
        with self._lock:
            self._handlers.setdefault(kind, []).append(handler)

    def publish(self, event: object) -> bool:
        """Run every handler of the event's type; False if one of them raised (each is logged
        and the others still run)."""
        ok = True
        for handler in self._handlers.get(type(event), ()):
            try:
                handler(event)
            except Exception:
                log.exception("a handler of %s failed", type(event).__name__)
                ok = False
        return ok
