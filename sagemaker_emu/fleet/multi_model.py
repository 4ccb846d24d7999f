"""Multi-model endpoints: which models each instance has loaded, and loading one on demand.

A container with `Mode: MultiModel` starts with no model. The first call naming a
`TargetModel` on an instance fetches `<ModelDataUrl prefix><TargetModel>` into that instance's
own models directory and asks its container to load it (`POST /models`, SageMaker's
multi-model contract); later calls for it on that instance are cache hits. An instance holds
models while their unpacked size fits in its instance type's memory (and, with
`--multi-model-cache N`, at most N of them); past that the least recently used model that no
call is using is unloaded (`DELETE /models/<name>`), as it is when the container answers a
load with 507. `MultiModelConfig.ModelCacheSetting: Disabled` unloads each model after its call.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence
from urllib.parse import quote

from sagemaker_emu.fleet import container, model_data
from sagemaker_emu.fleet.api import InstanceView, LoadFailed, Loaded, TargetNotFound

LOAD_TIMEOUT_S = 360.0  # SageMaker lets a model download and load for up to 360 s


@dataclass
class _Held:
    name: str  # the container's opaque model_name
    path: Path
    size: int  # unpacked bytes: what it is taken to occupy in memory
    in_use: int = 0  # calls between ensure() and done(): never unloaded under them


class ModelCache:
    """One instance's loaded models, least recently used first."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid  # the container process it describes: a restarted one holds nothing
        self.lock = threading.Lock()
        self.held: OrderedDict[str, _Held] = OrderedDict()  # by TargetModel
        self._loading: dict[str, threading.Lock] = {}  # one load of a model at a time

    def loading_lock(self, target: str) -> threading.Lock:
        with self.lock:
            return self._loading.setdefault(target, threading.Lock())


def model_name(target: str) -> str:
    """The opaque name the container knows a model by (not the TargetModel, as on SageMaker)."""
    return hashlib.sha256(target.encode()).hexdigest()[:32]


class MultiModels:
    """A multi-model variant: where its models come from and how much each instance may hold."""

    def __init__(self, prefix: str, cache_enabled: bool, memory_bytes: int | None, max_models: int,
                 fetch: Callable[[model_data.ModelSource, Path], object]) -> None:
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.local = self.prefix.startswith("file://")
        self.cache_enabled = cache_enabled
        self.memory_bytes = memory_bytes  # None: an instance type the table does not know
        self.max_models = max_models  # 0: no count limit
        self.fetch = fetch  # puts a model's data (and an S3 source directory's code) into a directory
        self._caches: dict[str, ModelCache] = {}  # by instance id
        self._lock = threading.Lock()

    def _cache(self, instance: InstanceView) -> ModelCache:
        """The instance's cache; a new one when its process has changed (restarted)."""
        with self._lock:
            cache = self._caches.get(instance.id)
            if cache is None or cache.pid != instance.pid:
                cache = self._caches[instance.id] = ModelCache(instance.pid)
            return cache

    def key(self, target: str) -> str:
        """The name a model is held under: an S3 TargetModel as given (S3 keys are not paths);
        under a local prefix, the path it names, so that `./a.tar.gz`, `a.tar.gz/` and
        `a.tar.gz` are one model, not three copies."""
        return str(PurePosixPath(target)) if self.local else target

    def holding(self, instances: Sequence[InstanceView], target: str) -> tuple[InstanceView, ...]:
        target = self.key(target)
        return tuple(i for i in instances if target in self._cache(i).held)

    def loaded(self, instance: InstanceView) -> list[str]:
        cache = self._cache(instance)
        with cache.lock:
            return list(cache.held)

    def ensure(self, instance: InstanceView, target: str) -> Loaded:
        target = self.key(target)
        cache = self._cache(instance)
        started = time.perf_counter()
        with cache.loading_lock(target):
            with cache.lock:
                held = cache.held.get(target)
                if held is not None:
                    cache.held.move_to_end(target)
                    held.in_use += 1
                    return Loaded(target, held.name, hit=True)
            name = model_name(target)
            path = instance.log_path.parent / "models" / name / "model"  # in the instance's own directory
            try:
                self._download(target, path)
            except model_data.ModelDataError as exc:
                shutil.rmtree(path.parent, ignore_errors=True)
                raise TargetNotFound(str(exc)) from None
            downloaded = time.perf_counter()
            size = _size(path)
            loaded = Loaded(target, name, hit=False, download_s=downloaded - started)
            loaded.unloads_s += self._make_room(instance, size)
            while True:
                status, message = _call(instance, "POST", "/models", {"model_name": name, "url": str(path)})
                took = self._unload_one(instance) if status == 507 else None  # out of room: free one, retry
                if took is None:
                    break
                loaded.unloads_s.append(took)
            if status not in (200, 409):  # 409: it already holds that name, which is as good
                shutil.rmtree(path.parent, ignore_errors=True)
                raise LoadFailed(status, message)
            with cache.lock:
                cache.held[target] = _Held(name, path, size, in_use=1)
            finished = time.perf_counter()
            loaded.load_s = finished - downloaded
            loaded.wait_s = finished - started
            return loaded

    def done(self, instance: InstanceView, loaded: Loaded) -> None:
        cache = self._cache(instance)
        with cache.lock:
            held = cache.held.get(loaded.target)
            if held is None:
                return
            held.in_use -= 1
            if held.in_use:
                return
        if self.cache_enabled:  # models loaded past the limit while others were in use go now
            self._make_room(instance, None)
            return
        with cache.loading_lock(loaded.target):  # ModelCacheSetting Disabled: unloaded after its call
            with cache.lock:
                if cache.held.get(loaded.target) is not held or held.in_use:
                    return  # another call took it meanwhile
                del cache.held[loaded.target]
            self._unload(instance, held)

    def _download(self, target: str, path: Path) -> None:
        relative = PurePosixPath(target)
        if relative.is_absolute() or ".." in relative.parts:
            raise model_data.ModelDataError(f"TargetModel {target} must be a path relative to the model's prefix")
        if self.local and not relative.parts:
            raise model_data.ModelDataError(f"TargetModel {target} names the model's prefix itself, not a model in it")
        # a local name is quoted into the file:// URL, so that `#`, `?` and `%41` stay part of it
        url = self.prefix + (quote(target, safe="/") if self.local else target)
        source = model_data.ModelSource(url, compressed=target.endswith((".tar.gz", ".tgz")))
        if source.url.startswith("file://"):  # a local prefix: the model must lie inside it
            local = model_data.local_path(source.url)
            if not local.resolve().is_relative_to(model_data.local_path(self.prefix).resolve()):
                raise model_data.ModelDataError(f"TargetModel {target} leaves the model's prefix {self.prefix}")
        if path.exists():  # left by a process that has since restarted
            shutil.rmtree(path)
        self.fetch(source, path)

    def _make_room(self, instance: InstanceView, size: int | None) -> list[float]:
        """Unload least recently used models until one more of `size` bytes fits (None: until
        those held fit)."""
        took: list[float] = []
        cache = self._cache(instance)
        incoming = 0 if size is None else 1
        while True:
            with cache.lock:
                held = list(cache.held.values())
            over_count = self.max_models and len(held) + incoming > self.max_models
            over_memory = self.memory_bytes is not None and sum(h.size for h in held) + (size or 0) > self.memory_bytes
            seconds = self._unload_one(instance) if over_count or over_memory else None
            if seconds is None:  # it fits, or everything held is in use: load anyway, as the container may manage
                return took
            took.append(seconds)

    def _unload_one(self, instance: InstanceView) -> float | None:
        """Unload the least recently used model that no call is using and no call is loading
        again, and say how long that took; None if there is none."""
        cache = self._cache(instance)
        with cache.lock:
            for target, held in cache.held.items():
                guard = cache._loading.get(target)
                if held.in_use == 0 and (guard is None or guard.acquire(blocking=False)):
                    del cache.held[target]
                    break
            else:
                return None
        started = time.perf_counter()
        try:
            self._unload(instance, held)
        finally:
            if guard is not None:
                guard.release()
        return time.perf_counter() - started

    def _unload(self, instance: InstanceView, held: _Held) -> None:
        _call(instance, "DELETE", f"/models/{held.name}", None)
        shutil.rmtree(held.path.parent, ignore_errors=True)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _call(instance: InstanceView, method: str, path: str, payload: dict | None) -> tuple[int, str]:
    """One model-management call to the instance's container: (status, its message)."""
    data = json.dumps(payload).encode() if payload is not None else b""
    try:
        status, raw = container.request(instance.host, instance.port, method, path, LOAD_TIMEOUT_S, data,
                                        {"Content-Type": "application/json"})
    except (OSError, ValueError) as exc:
        return 500, f"The container could not be reached to load the model: {exc}"
    body = raw.decode("utf-8", "replace")
    if status >= 300:
        try:
            body = str(json.loads(body).get("message", body))
        except (ValueError, AttributeError):
            pass
    return status, body
