"""Where the emulators running on this machine listen, so `sagemaker-emu env` and `logs` find a
server on any port (`make run PORT=0` included) without `--url`.

Each server writes `<pid>.json` (its URL) into a directory of the user's cache once it is bound
and removes it when it stops; a file whose process has gone (a server killed with SIGKILL) is
ignored and removed by the next reader. A reader takes the server on the default port when one
answers there, else the one started last.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from sagemaker_emu.config import DEFAULT_PORT

log = logging.getLogger("sagemaker_emu.discovery")

DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"


def directory() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "sagemaker-emu" / "servers"


@dataclass(frozen=True)
class Running:
    url: str
    pid: int
    started: float


def register(url: str) -> Path | None:
    """Record this process's server at `url`; returns the file to remove, or None if the cache
    directory cannot be written (the server then runs unrecorded, as before)."""
    path = directory() / f"{os.getpid()}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_suffix(".tmp")
        staged.write_text(json.dumps({"url": url, "pid": os.getpid(), "started": time.time()}))
        staged.replace(path)  # readers never see half a file
    except OSError as exc:
        log.debug("cannot record the server in %s: %s", path.parent, exc)
        return None
    return path


def unregister(path: Path | None) -> None:
    if path is not None:
        try:
            path.unlink()
        except OSError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def running() -> list[Running]:
    """The recorded servers whose process is alive, the last started first."""
    found = []
    try:
        paths = list(directory().glob("*.json"))
    except OSError:
        return []
    for path in paths:
        try:
            data = json.loads(path.read_text())
            entry = Running(str(data["url"]), int(data["pid"]), float(data["started"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _alive(entry.pid):
            found.append(entry)
        else:
            unregister(path)  # killed before it could remove its own
    return sorted(found, key=lambda e: e.started, reverse=True)


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether an emulator answers at `url`: its `Server` header, on an answer or on a refusal
    (a server that checks signatures refuses an unsigned call), not any web server's."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/_emu/health", timeout=timeout) as resp:
            server = resp.headers.get("Server", "")
    except urllib.error.HTTPError as exc:
        server = exc.headers.get("Server", "")
    except (OSError, ValueError):
        return False
    return server.startswith("sagemaker-emu")


def find() -> tuple[str | None, list[str]]:
    """(the URL to use, the other servers' URLs): the default port's server if it answers, else
    the recorded one started last; (None, []) when no server answers anywhere."""
    urls = [DEFAULT_URL] + [e.url for e in running() if e.url != DEFAULT_URL]
    live = [url for url in urls if answers(url)]
    return (live[0], live[1:]) if live else (None, [])
