"""Everything the emulator adds beyond AWS, under `/_emu/` so it never meets an AWS path."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, jsonify, request

from dataclasses import asdict

from sagemaker_emu import __version__
from sagemaker_emu.errors import InvalidInput

bp = Blueprint("emu", __name__, url_prefix="/_emu")
MAX_LOG_LINES = 10_000


@bp.get("/health")
def health():
    return jsonify({"status": "ok", "version": __version__})


@bp.post("/reset")
def reset():
    """Delete every resource in every region, stop every fleet, forget sessions and metrics."""
    current_app.config["EMU_BACKENDS"].reset()
    current_app.config["EMU_RUNTIME"].reset()
    return jsonify({"status": "reset"})


@bp.get("/metrics")
def metrics():
    """Prometheus text format: requests, errors, latencies, and in-flight gauges."""
    gauges = []
    for backend in current_app.config["EMU_BACKENDS"].all():
        with backend.lock:
            endpoints = [(ep.name, ep.fleet) for ep in backend.endpoints.values() if ep.fleet is not None]
        for name, fleet in endpoints:
            gauges += [((name, i.variant, i.id), i.load.in_flight) for i in fleet.all_instances()]
    text = current_app.config["EMU_RUNTIME"].metrics.render(gauges)
    return Response(text, mimetype="text/plain; version=0.0.4")


def _find_endpoint(name: str):
    for backend in current_app.config["EMU_BACKENDS"].all():
        with backend.lock:
            ep = backend.endpoints.get(name.lower())
            if ep is not None:
                return backend, ep
    abort(404, description=f"No endpoint named {name}")


@bp.get("/endpoints/<name>")
def endpoint_view(name: str):
    """Variants and instances of an endpoint: what a routing decision sees, and more."""
    backend, ep = _find_endpoint(name)
    fleet = ep.fleet
    variants = []
    for variant in ep.variants:
        instances = [i for i in fleet.all_instances() if i.variant == variant.name] if fleet else []
        routing = variant.spec.get("RoutingConfig", {}).get("RoutingStrategy", "RANDOM")
        variants.append({
            "name": variant.name,
            "weight": variant.weight,
            "routing_strategy": routing,
            "instances": [_instance_view(i) for i in instances],
        })
    return jsonify({"name": ep.name, "region": backend.region, "status": ep.status.value,
                    "failure_reason": ep.failure_reason, "variants": variants})


def _instance_view(instance) -> dict:
    load = instance.load.snapshot()
    return {
        "id": instance.id,
        "pid": instance.pid,
        "port": instance.port,
        "health": instance.health.value,
        "restarts": instance.restarts,
        "in_flight": load.in_flight,
        "served": load.served,
        "errors": load.errors,
        "log": str(instance.log_path),
        "kv_cache": ({"blocks": instance.kv.occupancy, "capacity": instance.kv.capacity}
                     if instance.kv.supported else None),
    }


@bp.get("/endpoints/<name>/instances/<instance_id>/logs")
def instance_logs(name: str, instance_id: str):
    """The last lines an instance wrote (`?lines=N`, default 200)."""
    _, ep = _find_endpoint(name)
    lines = request.args.get("lines", default=200, type=int)
    if not 1 <= lines <= MAX_LOG_LINES:
        return jsonify({"message": f"lines must be a whole number from 1 to {MAX_LOG_LINES}."}), 400
    for instance in ep.fleet.all_instances() if ep.fleet else []:
        if instance.id == instance_id:
            return Response("\n".join(instance.log_tail(lines)) + "\n", mimetype="text/plain")
    abort(404, description=f"No instance {instance_id} on endpoint {name}")


@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults():
    """GET lists the rules, POST adds one (see runtime/faults.py), DELETE removes them all."""
    table = current_app.config["EMU_RUNTIME"].faults
    if request.method == "POST":
        spec = request.get_json(force=True, silent=True)
        if not isinstance(spec, dict):
            return jsonify({"message": "The body must be a JSON object describing one fault."}), 400
        try:
            fault = table.add(spec)
        except (InvalidInput, TypeError, ValueError) as exc:
            return jsonify({"message": getattr(exc, "message", str(exc))}), 400
        return jsonify(asdict(fault)), 201
    if request.method == "DELETE":
        table.clear()
    return jsonify({"faults": table.list()})


@bp.delete("/faults/<fault_id>")
def delete_fault(fault_id: str):
    if not current_app.config["EMU_RUNTIME"].faults.remove(fault_id):
        abort(404, description=f"No fault {fault_id}")
    return jsonify({"deleted": fault_id})


@bp.route("/<path:rest>", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
def unknown(rest: str):
    """Anything else under /_emu/ is a JSON 404, whatever the method."""
    abort(404, description=f"sagemaker-emu has no /_emu/{rest[:200]}; see docs/configuration.md")
