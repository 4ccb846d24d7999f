"""Log setup: one line per call, as text or JSON lines."""

from __future__ import annotations

import json
import logging
import sys

_EXTRA = ("operation", "status", "request_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in _EXTRA if hasattr(record, k)})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(log_format: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("sagemaker_emu")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # Werkzeug's own access log would double every line we already write.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
