"""The SageMaker framework-container convention: a user's `inference.py` with `model_fn`,
`input_fn`, `predict_fn`, `output_fn` or `transform_fn`, as sagemaker-inference-toolkit runs it.

Defaults follow the toolkit without its numpy dependency: JSON and text bodies are decoded
to `str`/objects, other bodies arrive as `bytes`; a callable model is its own `predict_fn`;
JSON is the default output. `SAGEMAKER_MODEL_SERVER_WORKERS` (default 1) requests run at once.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sagemaker_emu.worker.contract import Invocation, Model, Reply

log = logging.getLogger("sagemaker_emu.worker.toolkit")

DEFAULT_PROGRAM = "inference.py"
DEFAULT_ACCEPT = "application/json"


class ToolkitError(Exception):
    """An error with the HTTP status the toolkit would answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Context:
    """What the toolkit passes as the optional trailing `context` argument."""

    model_dir: str
    system_properties: dict[str, Any]


SAGEMAKER_MODEL_DIR = "/opt/ml/model"  # where SageMaker puts model data; the SDK points code there


def code_dir(model_dir: Path, env: dict[str, str]) -> Path:
    submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
    if submit.startswith("file://"):
        submit = submit[len("file://"):]
    if not submit or submit.startswith("s3://"):
        return model_dir / "code"
    if submit == SAGEMAKER_MODEL_DIR or submit.startswith(SAGEMAKER_MODEL_DIR + "/"):
        return model_dir / submit[len(SAGEMAKER_MODEL_DIR):].lstrip("/")  # the model's own data
    return Path(submit)


def program_path(model_dir: Path, env: dict[str, str]) -> Path:
    program = env.get("SAGEMAKER_PROGRAM", DEFAULT_PROGRAM)
    if not program.endswith(".py"):
        program += ".py"
    return code_dir(model_dir, env) / program


def find_program(model_dir: Path, env: dict[str, str]) -> Path | None:
    path = program_path(model_dir, env)
    return path if path.is_file() else None


# Import names whose pip package has another name, for the message when one is missing.
PIP_NAMES = {"sklearn": "scikit-learn", "cv2": "opencv-python", "PIL": "Pillow", "yaml": "PyYAML",
             "skimage": "scikit-image"}


class MissingPackage(ModuleNotFoundError):
    """The model imports a package this environment lacks: say which to install."""


def _missing(exc: ModuleNotFoundError) -> MissingPackage:
    top = (exc.name or "").split(".")[0]
    package = PIP_NAMES.get(top, top)
    return MissingPackage(f"The model imports {top}, which is not installed where sagemaker-emu runs (it installs "
                          f"no ML framework): run `pip install {package}` in the environment of sagemaker-emu.",
                          name=exc.name)


def _load_module(path: Path):
    sys.path.insert(0, str(path.parent))  # as the toolkit does, so helpers next to it import
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None, f"{path} is a Python file"
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as exc:
        raise _missing(exc) from exc
    return module


def _call(fn: Callable, context: Context, *args):
    """Call a handler, adding `context` when it takes one more argument."""
    try:
        params = inspect.signature(fn).parameters
        takes_context = len(params) > len(args)
    except (TypeError, ValueError):
        takes_context = False
    return fn(*args, context) if takes_context else fn(*args)


def _is_stream(value) -> bool:
    """Generators and other iterators stream; bytes, str, lists and dicts do not."""
    return hasattr(value, "__next__")


def default_input_fn(data: bytes, content_type: str | None):
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            return json.loads(data)
        except ValueError:
            raise ToolkitError(400, "Unable to decode the request body as JSON") from None
    if ctype.startswith("text/"):
        return data.decode("utf-8", errors="replace")
    return data


def default_output_fn(prediction, accept: str):
    if _is_stream(prediction):  # a generator from predict_fn streams as it is made
        return prediction, accept
    if hasattr(prediction, "tolist"):
        prediction = prediction.tolist()
    if isinstance(prediction, (bytes, bytearray)):
        return bytes(prediction), accept
    ctype = accept.split(";")[0].strip().lower()
    if ctype == "application/json":
        return json.dumps(prediction), accept
    if ctype == "text/csv":
        rows = prediction if isinstance(prediction, list) else [prediction]
        lines = [",".join(map(str, r)) if isinstance(r, (list, tuple)) else str(r) for r in rows]
        return "\n".join(lines), accept
    raise ToolkitError(415, f"Unsupported accept type {accept!r}: provide an output_fn")


def server_workers(env: dict[str, str]) -> int:
    """SAGEMAKER_MODEL_SERVER_WORKERS: how many requests the model server runs at once."""
    workers = env.get("SAGEMAKER_MODEL_SERVER_WORKERS", "1")
    try:
        return max(1, int(workers))
    except ValueError:
        raise ValueError(f"SAGEMAKER_MODEL_SERVER_WORKERS={workers!r} is not a whole number") from None


class ToolkitModel(Model):
    def __init__(self, model_dir: Path, env: dict[str, str]) -> None:
        program = find_program(model_dir, env)
        if program is None:
            raise FileNotFoundError(
                f"No {env.get('SAGEMAKER_PROGRAM', DEFAULT_PROGRAM)} in {code_dir(model_dir, env)}"
            )
        self.concurrency = server_workers(env)
        self.default_accept = env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", DEFAULT_ACCEPT)
        if (code_dir(model_dir, env) / "requirements.txt").exists():
            log.warning("code/requirements.txt is not installed by sagemaker-emu; install it into the server's environment")
        module = _load_module(program)
        self.context = Context(model_dir=str(model_dir), system_properties={"model_dir": str(model_dir), "gpu_id": None})
        self.transform_fn = getattr(module, "transform_fn", None)
        split = [n for n in ("input_fn", "predict_fn", "output_fn") if hasattr(module, n)]
        if self.transform_fn and split:
            raise ValueError(f"{program.name} defines transform_fn together with {', '.join(split)}; define one or the other")
        self.input_fn = getattr(module, "input_fn", None)
        self.predict_fn = getattr(module, "predict_fn", None)
        self.output_fn = getattr(module, "output_fn", None)
        model_fn = getattr(module, "model_fn", None)
        if model_fn is None:
            raise ValueError(f"{program.name} has no model_fn: define model_fn(model_dir) to load the model")
        log.info("loading model with %s.model_fn(%s)", program.stem, model_dir)
        try:
            self.model = _call(model_fn, self.context, str(model_dir))
        except ModuleNotFoundError as exc:  # imported inside model_fn
            raise _missing(exc) from exc

    def healthy(self) -> bool:
        return True

    def invoke(self, invocation: Invocation) -> Reply:
        accept = invocation.accept
        if not accept or accept == "*/*":
            accept = self.default_accept
        try:
            result = self._run(invocation.body, invocation.content_type, accept)
        except ToolkitError as exc:
            return Reply(status=exc.status, body=str(exc).encode(), content_type="text/plain")
        body, content_type = result if isinstance(result, tuple) else (result, accept)
        if _is_stream(body):
            body = (c.encode() if isinstance(c, str) else bytes(c) for c in body)  # sent chunk by chunk
        elif isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, (bytes, bytearray)):
            body = str(body).encode()
        return Reply(body=body, content_type=content_type, custom_attributes=invocation.custom_attributes)

    def _run(self, body: bytes, content_type: str | None, accept: str):
        ctx = self.context
        if self.transform_fn is not None:
            return _call(self.transform_fn, ctx, self.model, body, content_type, accept)
        data = _call(self.input_fn, ctx, body, content_type) if self.input_fn else default_input_fn(body, content_type)
        if self.predict_fn is not None:
            prediction = _call(self.predict_fn, ctx, data, self.model)
        elif callable(self.model):
            prediction = self.model(data)
        else:
            raise ToolkitError(500, "Please provide a predict_fn implementation: the model is not callable")
        if self.output_fn is not None:
            return _call(self.output_fn, ctx, prediction, accept)
        return default_output_fn(prediction, accept)


def model_dir_from_env() -> Path:
    return Path(os.environ.get("SM_MODEL_DIR", "."))
