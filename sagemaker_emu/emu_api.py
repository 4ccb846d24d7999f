"""Everything the emulator adds beyond AWS, under `/_emu/` so it never meets an AWS path."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from sagemaker_emu import __version__

bp = Blueprint("emu", __name__, url_prefix="/_emu")


@bp.get("/health")
def health():
    return jsonify({"status": "ok", "version": __version__})


@bp.post("/reset")
def reset():
    """Delete every resource in every region and stop every fleet."""
    current_app.config["EMU_BACKENDS"].reset()
    return jsonify({"status": "reset"})
