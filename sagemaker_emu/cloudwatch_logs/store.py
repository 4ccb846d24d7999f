"""The log store: groups, streams and their events, filled from the workers' log files.

A thread reads what each worker has added to its file since the last look (every
`INGEST_S`), one event per line, stamped with the time it was read. Groups follow the
endpoints: `/aws/sagemaker/Endpoints/<endpoint>` exists from CreateEndpoint on (so a client
waiting on it always finds one) and `/aws/sagemaker/InferenceComponents/<component>` from
CreateInferenceComponent; both go when their resource is deleted. Each stream keeps its last
`MAX_STREAM_BYTES` of messages."""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

log = logging.getLogger("sagemaker_emu.logs")

ENDPOINTS, COMPONENTS = "/aws/sagemaker/Endpoints/", "/aws/sagemaker/InferenceComponents/"
MAX_STREAM_BYTES = 1024 * 1024
MAX_LINE_BYTES = 256 * 1024  # CloudWatch's largest event
INGEST_S = 0.5

# What the store follows: (region, endpoint, created, components, [(key, instance id, deployment, path)])
Source = Callable[[], Iterable[tuple[str, str, float, list[str], list[tuple[str, str, int, Path]]]]]
# Other groups it follows: (region, group, created, [(stream, path)]) (AI benchmark jobs' AIPerf output)
Groups = Callable[[], Iterable[tuple[str, str, float, list[tuple[str, Path]]]]]


@dataclass
class Event:
    timestamp: int  # ms
    message: str
    ingested: int
    sequence: int


@dataclass
class Stream:
    name: str
    created: int
    events: collections.deque = field(default_factory=collections.deque)
    size: int = 0
    path: Path | None = None
    offset: int = 0

    def add(self, event: Event) -> None:
        self.events.append(event)
        self.size += len(event.message)
        while self.size > MAX_STREAM_BYTES and self.events:
            self.size -= len(self.events.popleft().message)


@dataclass
class Group:
    name: str
    created: int
    streams: dict[str, Stream] = field(default_factory=dict)


def stream_name(key: str, instance_id: str, update: int) -> tuple[str, str | None]:
    """(stream name, the component it belongs to or None) for a worker's log; `update` counts
    the endpoint's deployments before this one (instance ids restart with each)."""
    suffix = f"-update-{update}" if update else ""
    if key.startswith("ic:"):
        return instance_id[3:] + suffix, key[3:]
    return f"{key}/{instance_id}{suffix}", None


class LogStore:
    def __init__(self, source: Source, others: Groups = lambda: (), wall: Callable[[], float] = time.time) -> None:
        self.source = source
        self.others = others
        self.wall = wall
        self._lock = threading.Lock()
        self._ingesting = threading.Lock()  # one reader of the files at a time
        self._groups: dict[str, dict[str, Group]] = {}  # region -> name -> group
        self._sequence = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="log-ingest")

    def start(self) -> "LogStore":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(INGEST_S):
            try:
                self.ingest()
            except Exception:
                log.exception("reading the workers' logs failed")

    def ingest(self) -> None:
        """Follow the endpoints as they are now, and read what each worker wrote since. The
        thread does it every INGEST_S, and every read does it first, so an answer is current."""
        with self._ingesting:
            self._ingest()

    def _ingest(self) -> None:
        now = int(self.wall() * 1000)
        wanted: dict[str, dict[str, tuple[int, list]]] = collections.defaultdict(dict)
        for region, endpoint, created, components, files in self.source():
            wanted[region][ENDPOINTS + endpoint] = (int(created * 1000), [])
            for component in components:
                wanted[region].setdefault(COMPONENTS + component, (int(created * 1000), []))
            updates = {d: i for i, d in enumerate(sorted({deployment for _, _, deployment, _ in files}))}
            for key, instance_id, deployment, path in files:
                name, owner = stream_name(key, instance_id, updates[deployment])
                if owner is not None and owner not in components:
                    continue  # a deleted component's copies: its group went with it
                wanted[region][COMPONENTS + owner if owner else ENDPOINTS + endpoint][1].append((name, path))
        for region, other, created, streams in self.others():
            wanted[region].setdefault(other, (int(created * 1000), []))[1].extend(streams)
        reads = []
        with self._lock:
            for region in list(self._groups):
                if region not in wanted:
                    del self._groups[region]
            for region, groups in wanted.items():
                held = self._groups.setdefault(region, {})
                for name in [n for n in held if n not in groups]:
                    del held[name]  # its endpoint or component was deleted
                for name, (created, streams) in groups.items():
                    group = held.setdefault(name, Group(name, created))
                    for stream_name_, path in streams:
                        stream = group.streams.get(stream_name_)
                        if stream is None:
                            stream = group.streams[stream_name_] = Stream(stream_name_, now, path=path)
                        reads.append(stream)
        for stream in reads:
            self._read(stream, now)

    def _read(self, stream: Stream, now: int) -> None:
        if stream.path is None:
            return
        try:
            with open(stream.path, "rb") as f:
                f.seek(stream.offset)
                data = f.read(4 * MAX_STREAM_BYTES)
        except OSError:
            return
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) < MAX_LINE_BYTES:
                return  # a line still being written
            end = len(data) - 1
        stream.offset += end + 1
        with self._lock:
            for line in data[:end + 1].splitlines():
                self._sequence += 1
                stream.add(Event(now, line[:MAX_LINE_BYTES].decode("utf-8", errors="replace"), now, self._sequence))

    # ------------------------------------------------------------ reading

    def groups(self, region: str) -> list[Group]:
        self.ingest()
        with self._lock:
            return sorted(self._groups.get(region, {}).values(), key=lambda g: g.name)

    def group(self, region: str, name: str) -> Group | None:
        self.ingest()
        with self._lock:
            return self._groups.get(region, {}).get(name)

    def lines(self, region: str, endpoint: str, instance_id: str, count: int) -> list[str] | None:
        """The last `count` lines of an instance (or copy) of the endpoint's current deployment,
        as CloudWatch Logs holds them (for `/_emu` and `sagemaker-emu logs`); None if unknown."""
        if instance_id.startswith("ic:"):
            group_name, base = COMPONENTS + instance_id[3:].rsplit("-", 1)[0], instance_id[3:]
        else:
            group_name, base = ENDPOINTS + endpoint, f"{instance_id.rsplit('-', 1)[0]}/{instance_id}"
        group = self.group(region, group_name)
        if group is None:
            return None
        names = [n for n in group.streams if n == base or n.startswith(base + "-update-")]
        if not names:
            return None
        latest = max(names, key=lambda n: int(n.rsplit("-", 1)[1]) if n != base else 0)
        return [e.message for e in self.events(group.streams[latest])][-count:]

    def clear(self, region: str, name: str) -> bool:
        """DeleteLogGroup: the group's events go. Its endpoint or component still runs, so the group
        itself stays, as on AWS where the next line a worker writes creates it again."""
        self.ingest()
        with self._lock:
            group = self._groups.get(region, {}).get(name)
            if group is None:
                return False
            group.created = int(self.wall() * 1000)
            for stream in group.streams.values():
                stream.events.clear()
                stream.size = 0
            return True

    def events(self, stream: Stream) -> list[Event]:
        with self._lock:
            return list(stream.events)

    def reset(self) -> None:
        with self._lock:
            self._groups.clear()
