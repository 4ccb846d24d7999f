"""Everything the emulator adds beyond AWS, under `/_emu/` so it never meets an AWS path.

It reads endpoints as the store's snapshots and fleets through `fleet.api.FleetView`; it
never takes the store's lock, and touches a process only by asking its fleet (`kill`). The
live view's page is `/_emu/ui` (ui/static/), and what it polls is `/_emu/state` (ui/state.py)."""

from __future__ import annotations

from dataclasses import asdict
from importlib import resources
from typing import TYPE_CHECKING, Callable

from flask import Blueprint, Response, abort, jsonify, request

from sagemaker_emu import __version__
from sagemaker_emu.errors import InvalidInput
from sagemaker_emu.ui import COOKIE
from sagemaker_emu.ui.state import LiveState, endpoint_view

if TYPE_CHECKING:
    from sagemaker_emu.control.store import Backends
    from sagemaker_emu.fleet.instance_capacity import InstanceCapacity
    from sagemaker_emu.runtime.invoke import Runtime

MAX_LOG_LINES = 10_000
UI_FILES = {"index.html": "text/html", "ui.js": "text/javascript", "ui.css": "text/css"}


def blueprint(backends: "Backends", runtime: "Runtime", reset_all: Callable[[], None],
              async_depth: Callable[[str, str, str], dict] = lambda region, name, account: {},
              log_lines: Callable[[str, str, str, int], list[str] | None] = lambda region, name, instance, n: None,
              router_states: Callable[[], list[tuple[str, str, str]]] = list,
              capacity: "InstanceCapacity | None" = None, live: LiveState | None = None,
              ) -> Blueprint:
    """`/_emu/`, reading `backends`' snapshots, `runtime`'s metrics and faults, the async
    queues' depth (`async_depth(region, endpoint, account)`), and the workers' lines as CloudWatch Logs
    holds them (`log_lines(region, endpoint, instance id, count)`)."""
    bp = Blueprint("emu", __name__, url_prefix="/_emu")

    @bp.get("/health")
    def health():
        return jsonify({"status": "ok", "version": __version__})

    @bp.post("/reset")
    def reset():
        """Delete every resource in every region, stop every fleet, forget sessions and metrics."""
        reset_all()
        return jsonify({"status": "reset"})

    @bp.get("/metrics")
    def metrics():
        """Prometheus text format: requests, errors, latencies, and in-flight gauges."""
        gauges = [((name, i.variant, i.id), i.load.in_flight)
                  for name, fleet in backends.fleets() for i in fleet.all_instances()]
        states = [(router.rsplit("/", 1)[-1], destination, state) for router, destination, state in router_states()]
        return Response(runtime.metrics.render(gauges, states), mimetype="text/plain; version=0.0.4")

    def find_endpoint(name: str):
        found = backends.find(name)
        if found is None:
            abort(404, description=f"No endpoint named {name}")
        return found

    @bp.get("/endpoints/<name>")
    def one_endpoint(name: str):
        """Variants and instances of an endpoint: what a routing decision sees, and more."""
        ep = find_endpoint(name)
        view = endpoint_view(ep)
        if ep.async_config is not None:
            view["async"] = async_depth(ep.region, ep.name, ep.account)  # requests queued and running
        return jsonify(view)

    @bp.get("/endpoints/<name>/instances/<instance_id>/logs")
    def instance_logs(name: str, instance_id: str):
        """The last lines an instance wrote (`?lines=N`, default 200)."""
        ep = find_endpoint(name)
        lines = request.args.get("lines", default=200, type=int)
        if not 1 <= lines <= MAX_LOG_LINES:
            return jsonify({"message": f"lines must be a whole number from 1 to {MAX_LOG_LINES}."}), 400
        if not any(i.id == instance_id for i in (ep.fleet.all_instances() if ep.fleet else [])):
            abort(404, description=f"No instance {instance_id} on endpoint {name}")
        held = log_lines(ep.region, ep.name, instance_id, lines)  # the store CloudWatch Logs answers from
        return Response("\n".join(held or []) + "\n", mimetype="text/plain")

    @bp.post("/endpoints/<name>/instances/<instance_id>/kill")
    def kill_instance(name: str, instance_id: str):
        """SIGKILL one instance's or copy's process, as a crash would; its fleet restarts it."""
        ep = find_endpoint(name)
        if ep.fleet is None or not ep.fleet.kill(instance_id):
            abort(404, description=f"No running instance {instance_id} on endpoint {name}")
        return jsonify({"killed": instance_id})

    @bp.get("/state")
    def state():
        """Everything the live view draws, in one document (ui/state.py)."""
        if live is None:
            abort(404, description="This emulator has no live view.")
        response = jsonify(live.document())
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/ui")
    @bp.get("/ui/")
    @bp.get("/ui/<path:asset>")
    def live_view(asset: str = "index.html"):
        """The live view's page and its two files, shipped in the package: nothing from elsewhere."""
        if asset not in UI_FILES:
            abort(404, description=f"The live view has no {asset[:100]}")
        body = resources.files("sagemaker_emu.ui").joinpath("static", asset).read_bytes()
        response = Response(body, mimetype=UI_FILES[asset])
        response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; "
                                                       "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        token = request.args.get("token")
        if asset == "index.html" and token:  # --auth sigv4: the page's own calls carry it as a cookie
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/_emu")
        return response

    @bp.route("/faults", methods=["GET", "POST", "DELETE"])
    def faults():
        """GET lists the rules, POST adds one (see runtime/faults.py), DELETE removes them all."""
        table = runtime.faults
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
        if not runtime.faults.remove(fault_id):
            abort(404, description=f"No fault {fault_id}")
        return jsonify({"deleted": fault_id})

    @bp.route("/capacity", methods=["GET", "POST"])
    def instance_capacity():
        """GET: each limited or used type's limit and instances in use. POST
        `{"InstanceType": "ml.p5.48xlarge", "Count": 0}` limits a type (`"Count": null` lifts it),
        as `serve --capacity` does; a reset restores the server's own limits."""
        if capacity is None:
            abort(404, description="This emulator has no instance capacity to show.")
        if request.method == "POST":
            spec = request.get_json(force=True, silent=True)
            itype = spec.get("InstanceType") if isinstance(spec, dict) else None
            count = spec.get("Count") if isinstance(spec, dict) else None
            if not isinstance(itype, str) or not itype.startswith("ml.") or not (
                    count is None or (isinstance(count, int) and not isinstance(count, bool) and count >= 0)):
                return jsonify({"message": 'The body must be {"InstanceType": "ml.<type>", "Count": N or null}.'}), 400
            capacity.limit(itype, count)
        return jsonify({"capacity": capacity.view()})

    @bp.route("/<path:rest>", methods=["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
    def unknown(rest: str):
        """Anything else under /_emu/ is a JSON 404, whatever the method."""
        abort(404, description=f"sagemaker-emu has no /_emu/{rest[:200]}; see docs/configuration.md")

    return bp
