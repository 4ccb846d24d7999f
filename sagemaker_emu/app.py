"""The Flask application factory: wires the front doors to the control plane."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from sagemaker_emu.config import Config
from sagemaker_emu.control.quotas import Quotas
from sagemaker_emu.control.store import Backends
from sagemaker_emu.fleet.fleet import HealthChecks, ProcessDeployer
from sagemaker_emu.fleet.images import ImageMap
from sagemaker_emu.metrics import Metrics
from sagemaker_emu.routing.strategies import strategy_for
from sagemaker_emu.runtime.invoke import Runtime

# Larger control-plane bodies are refused before they are read (HTTP 413).
MAX_REQUEST_BYTES = 16 * 1024 * 1024


def create_app(config: Config | None = None) -> Flask:
    config = config or Config()
    app = Flask("sagemaker_emu")
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.config["EMU"] = config
    state_dir = Path(config.state_dir or tempfile.mkdtemp(prefix="sagemaker-emu-"))
    deployer = ProcessDeployer(
        state_dir,
        image_map=ImageMap.load(config.image_map) if config.image_map else None,
        seed=config.seed,
        stop_grace=config.stop_grace,
        drain_timeout=config.model_timeout,
        router_factory=strategy_for,
        health=HealthChecks(config.health_interval, config.health_failures),
        model_roots=[Path(r) for r in (config.model_roots if config.model_roots is not None else (Path.cwd(),))],
    )
    backends = Backends(config.account, deployer, Quotas.parse(config.quotas),
                        min_transition=config.min_transition_seconds)
    app.config["EMU_BACKENDS"] = backends
    runtime = Runtime(backends, seed=config.seed, model_timeout=config.model_timeout, metrics=Metrics())
    backends.on_deleted = runtime.forget
    app.config["EMU_RUNTIME"] = runtime
    app.config["EMU_STATE_DIR"] = state_dir
    app.config["EMU_OWNS_STATE_DIR"] = config.state_dir is None

    from sagemaker_emu import emu_api
    from sagemaker_emu.protocol import json11, rest

    from sagemaker_emu.control.operations import OPERATIONS
    from sagemaker_emu.schemas.validator import warm

    warm(OPERATIONS)  # build every schema now, not on a user's first call
    warm(["InvokeEndpoint", "InvokeEndpointWithResponseStream"], "sagemaker-runtime")
    app.register_blueprint(emu_api.bp)
    app.register_error_handler(HTTPException, _http_error)
    app.wsgi_app = rest.RuntimeAPI(runtime, config, app.wsgi_app)  # the hot path skips Flask
    app.register_blueprint(json11.bp)
    return app


def _http_error(exc: HTTPException):
    """Paths that are neither AWS calls nor /_emu/ answer JSON, never an HTML page."""
    return jsonify({"message": exc.description}), exc.code


def shutdown(app: Flask) -> None:
    """Stop every fleet and remove the state directory the app created."""
    app.config["EMU_BACKENDS"].reset()
    if app.config["EMU_OWNS_STATE_DIR"]:
        shutil.rmtree(app.config["EMU_STATE_DIR"], ignore_errors=True)
