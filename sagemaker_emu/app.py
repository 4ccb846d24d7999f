"""The Flask application factory: wires the front doors to the control plane."""

from __future__ import annotations

from flask import Flask

from sagemaker_emu.config import Config
from sagemaker_emu.control.deployment import PlaceholderDeployer
from sagemaker_emu.control.store import Backends

# Larger control-plane bodies are refused before they are read (HTTP 413).
MAX_REQUEST_BYTES = 16 * 1024 * 1024


def create_app(config: Config | None = None) -> Flask:
    config = config or Config()
    app = Flask("sagemaker_emu")
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.config["EMU"] = config
    app.config["EMU_BACKENDS"] = Backends(config.account, PlaceholderDeployer())

    from sagemaker_emu import emu_api
    from sagemaker_emu.protocol import json11

    from sagemaker_emu.control.operations import OPERATIONS
    from sagemaker_emu.schemas.validator import warm

    warm(OPERATIONS)  # build every schema now, not on a user's first call
    app.register_blueprint(emu_api.bp)
    app.register_blueprint(json11.bp)
    return app
