"""Entry point of an instance process: `python -m sagemaker_emu.worker <kind>`.

kind: a built-in image name (`echo`, `llm-sim`), `toolkit` for an inference.py, or `pipeline`
for a model of several containers (worker/pipeline.py).
The port comes from SAGEMAKER_BIND_TO_PORT, the model directory from SM_MODEL_DIR; it listens on
127.0.0.1, or on SAGEMAKER_EMU_BIND_HOST (a Ray node's address, fleet/ray_nodes.py).
The process exits when its parent (the emulator) is gone, so no worker is ever orphaned.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
import time

from sagemaker_emu.worker import lifeline
from sagemaker_emu.worker.contract import EXIT_PORT_TAKEN, Model
from sagemaker_emu.worker.server import ContainerServer

class SlowStart(Model):
    """`SAGEMAKER_EMU_STARTUP_DELAY` seconds of failing /ping, like a model still loading."""

    def __init__(self, model, delay: float) -> None:
        self.model = model
        self.ready_at = time.monotonic() + delay
        self.concurrency = model.concurrency

    def healthy(self) -> bool:
        return time.monotonic() >= self.ready_at and self.model.healthy()

    def invoke(self, invocation):
        return self.model.invoke(invocation)

    def get(self, path: str, query: dict):
        return self.model.get(path, query)  # llm-sim's /kv-events works while it "loads" too

    def post(self, path: str, body: bytes):
        return self.model.post(path, body)

    def delete(self, path: str):
        return self.model.delete(path)


def build_model(kind: str, env: dict[str, str]):
    if kind == "pipeline":  # several containers, a worker each: what each runs is in the fleet's JSON file
        import json
        from pathlib import Path

        from sagemaker_emu.worker.pipeline import PIPELINE_SPEC, Container, Pipeline

        spec = json.loads(Path(env[PIPELINE_SPEC]).read_text())
        return Pipeline([Container(**c) for c in spec["containers"]], direct=spec["mode"] == "Direct", env=env)
    if env.get("SAGEMAKER_MULTI_MODEL", "").lower() == "true":  # SageMaker's multi-model mode: models come later
        from sagemaker_emu.worker.multi_model import MultiModel
        from sagemaker_emu.worker.toolkit import server_workers

        return MultiModel(lambda model_dir: _single_model(kind, env, model_dir), server_workers(env))
    return _single_model(kind, env, None)


def _single_model(kind: str, env: dict[str, str], model_dir):
    seed = env.get("SAGEMAKER_EMU_SEED")
    seed_value = int(seed) if seed not in (None, "") else None
    if kind == "toolkit":
        from sagemaker_emu.worker.toolkit import ToolkitModel, model_dir_from_env

        return ToolkitModel(model_dir or model_dir_from_env(), env)
    from sagemaker_emu.worker.builtin import BUILTINS

    return BUILTINS[kind](env, seed_value)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s", force=True)
    parent = os.environ.get("SAGEMAKER_EMU_PARENT_PID")
    if parent:
        lifeline.hold(int(parent))
    kind = argv[0]
    env = dict(os.environ)
    try:
        model = build_model(kind, env)
        delay = float(env.get("SAGEMAKER_EMU_STARTUP_DELAY") or 0)
        if delay > 0:
            model = SlowStart(model, delay)
    except Exception:
        logging.getLogger("sagemaker_emu.worker").exception("the model failed to load")
        return 1
    port = int(env.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    host = env.get("SAGEMAKER_EMU_BIND_HOST") or "127.0.0.1"
    try:
        server = ContainerServer((host, port), model)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        logging.getLogger("sagemaker_emu.worker").warning("port %d was taken before this worker could bind it", port)
        return EXIT_PORT_TAKEN
    logging.getLogger("sagemaker_emu.worker").info("serving %s on %s:%d", kind, host, port)
    sys.stdout.flush()
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
