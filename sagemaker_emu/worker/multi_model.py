"""A multi-model container: SageMaker's model-management contract over many loaded models.

SageMaker starts a multi-model container with `SAGEMAKER_MULTI_MODEL=true` and no model; it
then loads one with `POST /models {"model_name", "url"}` (409 when that name is loaded, 507
when there is no room), lists with `GET /models` and `GET /models/<name>`, unloads with
`DELETE /models/<name>`, and invokes with `POST /models/<name>/invoke`. Each loaded model is
the single-model `Model` the container would serve for that directory (`load(path)`), so an
inference.py in each archive's code/ folder is run as the toolkit runs it.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Callable

from sagemaker_emu.worker.contract import Invocation, Model, Reply

log = logging.getLogger("sagemaker_emu.worker.multi_model")


def _json(status: int, payload: dict) -> Reply:
    return Reply(status=status, body=json.dumps(payload).encode())


class MultiModel(Model):
    def __init__(self, load: Callable[[Path], Model], concurrency: int | None = None) -> None:
        self._load = load
        self.concurrency = concurrency
        self._models: dict[str, tuple[Model, str]] = {}  # model_name -> (model, url)
        self._lock = threading.Lock()

    def invoke(self, invocation: Invocation) -> Reply:
        with self._lock:
            loaded = self._models.get(invocation.model_name or "")
        if loaded is None:
            return _json(404, {"message": f"Model {invocation.model_name} is not loaded."})
        return loaded[0].invoke(invocation)

    def get(self, path: str, query: dict[str, str]) -> Reply | None:
        if path == "/models":
            with self._lock:
                listed = [{"modelName": name, "modelUrl": url} for name, (_, url) in self._models.items()]
            return _json(200, {"models": listed})
        if path.startswith("/models/"):
            name = path[len("/models/"):]
            with self._lock:
                loaded = self._models.get(name)
            if loaded is None:
                return _json(404, {"message": f"Model {name} is not loaded."})
            return _json(200, {"modelName": name, "modelUrl": loaded[1]})
        return None

    def post(self, path: str, body: bytes) -> Reply | None:
        if path != "/models":
            return None
        try:
            request = json.loads(body)
            name, url = str(request["model_name"]), str(request["url"])
        except (ValueError, KeyError, TypeError):
            return _json(400, {"message": 'The body must be JSON with "model_name" and "url".'})
        with self._lock:
            if name in self._models:
                return _json(409, {"message": f"Model {name} is already loaded."})
        try:
            model = self._load(Path(url))
        except MemoryError:
            return _json(507, {"message": f"Not enough memory to load model {name}."})
        except Exception as exc:  # the model's own code failed: say why, as a load failure
            log.exception("loading model %s failed", name)
            return _json(500, {"message": f"Model {name} failed to load: {type(exc).__name__}: {exc}"})
        with self._lock:
            self._models[name] = (model, url)
        log.info("loaded model %s from %s", name, url)
        return _json(200, {"message": f"Model {name} loaded."})

    def delete(self, path: str) -> Reply | None:
        if not path.startswith("/models/"):
            return None
        name = path[len("/models/"):]
        with self._lock:
            loaded = self._models.pop(name, None)
        if loaded is None:
            return _json(404, {"message": f"Model {name} is not loaded."})
        log.info("unloaded model %s", name)
        return _json(200, {"message": f"Model {name} unloaded."})
