"""Where inference-component copies go: each instance's hardware (instance_types.json, data),
what its copies reserve, and the choice among the instances a copy fits on.

A copy reserves its IC's `NumberOfAcceleratorDevicesRequired`, `MinMemoryRequiredInMb` and
`NumberOfCpuCoresRequired`; it goes only where all three fit beside the copies already
there. SPREAD (SageMaker's default) puts it on the instance with the fewest copies, BINPACK
on the fullest that still fits, so a whole instance is left free for a later, larger copy.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Callable

TABLE = Path(__file__).with_name("instance_types.json")
NO_ROOM = ("There is not enough hardware resources on the instances for this endpoint to create a copy "
           "of the inference component.")


@dataclass(frozen=True)
class Hardware:
    accelerators: int
    accelerator_memory_gb: int
    vcpus: int
    memory_mb: int
    accelerator: str = ""  # a key of accelerators.json ("" for CPU instances)


@functools.lru_cache(maxsize=None)
def _table() -> dict[str, Hardware]:
    data = json.loads(TABLE.read_text())
    return {name: Hardware(**spec) for name, spec in data.items() if not name.startswith("_")}


def hardware(instance_type: str) -> Hardware | None:
    """The instance type's hardware, or None for a type the table does not have."""
    return _table().get(instance_type)


@dataclass(frozen=True)
class Need:
    """What one copy reserves on its instance."""

    accelerators: float = 0.0
    memory_mb: int = 0
    cpus: float = 0.0


@dataclass
class Host:
    """One instance of an inference-component endpoint: its hardware and who holds what."""

    id: str
    instance_type: str
    hardware: Hardware
    reserved: dict[str, Need] = field(default_factory=dict)  # copy id -> what it holds

    def free(self) -> Need:
        used = self.reserved.values()
        return Need(self.hardware.accelerators - sum(n.accelerators for n in used),
                    self.hardware.memory_mb - sum(n.memory_mb for n in used),
                    self.hardware.vcpus - sum(n.cpus for n in used))

    def fits(self, need: Need) -> bool:
        free = self.free()
        return need.accelerators <= free.accelerators and need.memory_mb <= free.memory_mb and need.cpus <= free.cpus


class Placement:
    """The hosts of one variant and their reservations; every change under one lock.

    With managed instance scaling (`new_host` given), a copy that fits nowhere gets a new
    instance while there are fewer than `max_hosts`: `new_host(fits)` gives one it fits on, or
    None when none can be had, and an instance left with no copies is released while there are more than
    `min_hosts`. `drop_host` is told of every host that goes; `priority` ranks the hosts'
    instance types (their pools), 1 first."""

    def __init__(self, hosts: list[Host], new_host: Callable[[Callable[[Host], bool]], Host | None] | None = None,
                 min_hosts: int = 0, max_hosts: int = 0, drop_host: Callable[[Host], None] = lambda host: None,
                 priority: dict[str, int] | None = None) -> None:
        self.hosts = hosts
        self.new_host = new_host
        self.drop_host = drop_host
        self.priority = priority or {}
        self.min_hosts, self.max_hosts = min_hosts, max_hosts
        self.changed = time.monotonic()  # the last copy placed or released: consolidation waits after it
        self._lock = threading.Lock()

    def reserve(self, copy_id: str, need: Need, strategy: str = "SPREAD",
                needs: dict[str, Need] | None = None) -> Host | None:
        """Reserve room for a copy on the host `strategy` picks among those it fits; None if
        none. With `needs` (a specification per instance type), a host of a type it does not
        name takes no copy, and a host of one it names must fit that type's need."""
        def fits(host: Host) -> bool:
            wanted = need if needs is None else needs.get(host.instance_type)
            return wanted is not None and host.fits(wanted)

        with self._lock:
            fitting = [h for h in self.hosts if fits(h)]
            if not fitting and self.new_host is not None and len(self.hosts) < self.max_hosts:
                new = self.new_host(fits)
                if new is not None:
                    self.hosts.append(new)
                    fitting = [new]
            if not fitting:
                return None
            if strategy == "BINPACK":  # the least room left after it
                host = min(fitting, key=lambda h: (*astuple(h.free()), h.id))
            else:  # the fewest copies, then the most room
                host = min(fitting, key=lambda h: (len(h.reserved), *(-x for x in astuple(h.free())), h.id))
            host.reserved[copy_id] = need if needs is None else needs[host.instance_type]
            self.changed = time.monotonic()
            return host

    def reserved_for(self, copy_id: str) -> tuple[Host, Need] | None:
        """The host a copy has room on, and the room."""
        with self._lock:
            return next(((h, h.reserved[copy_id]) for h in self.hosts if copy_id in h.reserved), None)

    def reserve_on(self, copy_id: str, need: Need, host_id: str) -> Host | None:
        """Reserve room for a copy on that host, if it is still there and the copy fits."""
        with self._lock:
            host = next((h for h in self.hosts if h.id == host_id), None)
            if host is None or not host.fits(need):
                return None
            host.reserved[copy_id] = need
            self.changed = time.monotonic()
            return host

    def consolidation(self, need_on: Callable[[str, str], Need | None]) -> tuple[Host, dict[str, Host]] | None:
        """A host whose copies all fit on the others (`need_on(copy, instance type)`: what a copy
        would reserve on a host of that type, None if it cannot go there), and where each would
        go, fullest host first; None when no host can be emptied or none may go. The lowest
        priority pool's hosts are emptied first, then those with the fewest copies."""
        with self._lock:
            if self.new_host is None or len(self.hosts) <= self.min_hosts:
                return None
            order = sorted(self.hosts, key=lambda h: (-self.priority.get(h.instance_type, 0), len(h.reserved), h.id))
            for source in order:
                free = {h.id: h.free() for h in self.hosts if h is not source}
                moves: dict[str, Host] = {}
                for copy_id in sorted(source.reserved, key=lambda c: -source.reserved[c].accelerators):
                    fitting = []
                    for host in self.hosts:
                        need = need_on(copy_id, host.instance_type) if host is not source else None
                        room = free.get(host.id)
                        if need is not None and room is not None and need.accelerators <= room.accelerators \
                                and need.memory_mb <= room.memory_mb and need.cpus <= room.cpus:
                            fitting.append((astuple(room), host.id, host, need))
                    if not fitting:
                        break
                    _, _, target, need = min(fitting, key=lambda f: (f[0], f[1]))  # the fullest that fits
                    room = free[target.id]
                    free[target.id] = Need(room.accelerators - need.accelerators, room.memory_mb - need.memory_mb,
                                           room.cpus - need.cpus)
                    moves[copy_id] = target
                else:
                    return source, moves
            return None

    def release(self, copy_id: str) -> None:
        with self._lock:
            for host in self.hosts:
                if host.reserved.pop(copy_id, None) is None:
                    continue
                self.changed = time.monotonic()
                if not host.reserved and self.new_host is not None and len(self.hosts) > self.min_hosts:
                    self.hosts.remove(host)  # managed scaling gives back an empty instance
                    self.drop_host(host)
                return

    def drop_all(self) -> None:
        """The fleet stops: every host goes."""
        with self._lock:
            hosts, self.hosts = self.hosts, []
        for host in hosts:
            self.drop_host(host)

    def counts(self) -> dict[str, int]:
        """Hosts by instance type, every pool's in priority order."""
        with self._lock:
            counts = {itype: 0 for itype in sorted(self.priority, key=self.priority.__getitem__)}
            for host in self.hosts:
                counts[host.instance_type] = counts.get(host.instance_type, 0) + 1
            return counts

    def view(self) -> list[dict]:
        with self._lock:
            return [{"id": h.id, "instance_type": h.instance_type, "copies": sorted(h.reserved),
                     "free": vars(h.free())} for h in self.hosts]
