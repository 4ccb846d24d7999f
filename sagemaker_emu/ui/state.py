"""What the live view shows, in one JSON document (`GET /_emu/state`), read without taking
any control-plane lock for longer than a snapshot: endpoints with their variants, instances,
copies, the instances their last calls went to, a deployment's traffic share and serverless
cold starts; each endpoint's traffic over the last
minutes from the CloudWatch store (the numbers GetMetricStatistics answers with); scalable
targets with their alarms and activities; inference routers' decisions; benchmark jobs with
a completed job's percentiles.

The page keeps its own history of what it polls (capacities over time), so the server holds
nothing for it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from sagemaker_emu.cloudwatch.invocations import NAMESPACE
from sagemaker_emu.cloudwatch.queries import stat_values
from sagemaker_emu.fleet.api import InstanceView, MultiModelView, component_key

if TYPE_CHECKING:
    from sagemaker_emu.autoscaling.backend import AutoScaling
    from sagemaker_emu.cloudwatch.backend import CloudWatch
    from sagemaker_emu.control.resources import EndpointSnapshot
    from sagemaker_emu.control.store import Backends
    from sagemaker_emu.metrics import Metrics

TRAFFIC_S = 300  # the traffic charts' window
PERIOD_S = 10  # one point per ten seconds
KV_AGE_S = 1.0  # how old an instance's prefix-cache numbers may be


def instance_view(instance: InstanceView, multi: MultiModelView | None = None) -> dict:
    """One instance or copy: where it runs, its load and health (`/_emu/endpoints/<name>` too)."""
    load = instance.load.snapshot()
    return {
        "id": instance.id,
        "placed_on": instance.placed_on,
        "instance_type": instance.instance_type,
        "model": instance.model_name,
        "pid": instance.pid,
        "node": instance.node,
        "host": instance.host,
        "port": instance.port,
        "health": instance.health.value,
        "restarts": instance.restarts,
        "in_flight": load.in_flight,
        "served": load.served,
        "errors": load.errors,
        "log": str(instance.log_path),
        "kv_cache": ({"blocks": instance.kv.occupancy, "capacity": instance.kv.capacity,
                      "queried_tokens": instance.kv.queried_tokens, "hit_tokens": instance.kv.hit_tokens}
                     if instance.kv.supported else None),
        "models": multi.loaded(instance) if multi is not None else None,  # multi-model: loaded, least recently used first
    }


def endpoint_view(ep: "EndpointSnapshot") -> dict:
    """An endpoint's variants, instances and inference components' copies, as its fleet has them."""
    fleet = ep.fleet
    instances = fleet.all_instances() if fleet else []
    variants = [{"name": v.name, "weight": v.weight, "routing_strategy": v.routing_strategy,
                 # an inference-component variant's type is its placement's (its one pool's)
                 "instance_type": fleet.instance_type(v.name) or next(iter(fleet.pool_counts(v.name)), "")
                 if fleet else "",
                 "serverless": fleet is not None and fleet.serverless(v.name) is not None,
                 "pools": fleet.pool_counts(v.name) if fleet else {},
                 "instances": [instance_view(i, fleet.multi_model(v.name)) for i in instances if i.variant == v.name],
                 "hosts": fleet.placement(v.name) if fleet else []}  # inference-component variants
                for v in ep.variants]
    components = {c.name: {"variant": c.variant, "status": c.status, "copies": [instance_view(i) for i in instances
                                                           if i.variant == component_key(c.name)]}
                  for c in ep.components.values()}
    return {"name": ep.name, "region": ep.region, "status": ep.status, "failure_reason": ep.failure_reason,
            "variants": variants, "inference_components": components}


class LiveState:
    def __init__(self, backends: "Backends", metrics: "Metrics", cloudwatch: "CloudWatch",
                 autoscaling: "AutoScaling", capacity: Callable[[], dict] = dict,
                 wall: Callable[[], float] = time.time,
                 benchmark_summary: Callable[[str, str, str], dict | None] = lambda region, account, name: None,
                 ) -> None:
        self.backends, self.metrics, self.cloudwatch, self.autoscaling = backends, metrics, cloudwatch, autoscaling
        self.capacity, self.wall, self.benchmark_summary = capacity, wall, benchmark_summary

    def document(self) -> dict[str, Any]:
        now = self.wall()
        endpoints, jobs, routers, regions = [], [], [], set()
        for backend in self.backends.all():
            regions.add(backend.region)
            for name, _, _ in backend.names():
                snapshot = backend.snapshot(name)
                if snapshot is None:
                    continue
                if snapshot.fleet is not None:  # the containers' own prefix-cache hit counts, a second old at most
                    for instance in snapshot.fleet.all_instances():
                        instance.refresh_kv(KV_AGE_S)
                view = endpoint_view(snapshot)
                view["account"] = snapshot.account
                view["recent"] = self.metrics.recent_calls(snapshot.name)
                view["cold_starts"] = self.metrics.cold_starts(snapshot.name)
                # a guarded update (blue/green): the new fleet's share of the traffic now
                view["deployment"] = {"config": snapshot.deploying_config,
                                      "share": snapshot.green[0] if snapshot.green else 0.0} \
                    if snapshot.deploying_config else None
                view["traffic"] = self._traffic(snapshot, now)
                endpoints.append(view)
            jobs += [{**job, "summary": self.benchmark_summary(backend.region, backend.account, job["name"])}
                     for job in backend.read(_jobs)]
            routers += backend.read(_routers)
        return {"time": now, "endpoints": endpoints, "scaling": [t for r in sorted(regions) for t in self._scaling(r)],
                "routers": routers, "routed": [{"router": r.rsplit("/", 1)[-1], "destination": d, "reason": why,
                                                "calls": n} for r, d, why, n in self.metrics.routed()],
                "benchmarks": jobs, "capacity": self.capacity()}

    def _traffic(self, ep: "EndpointSnapshot", now: float) -> dict[str, Any]:
        """Invocations a second, and ModelLatency p50 and p99 in ms, per PERIOD_S over TRAFFIC_S,
        summed over the endpoint's variants (each variant's series is what CloudWatch holds)."""
        store = self.cloudwatch.reading(ep.region)
        end = now // PERIOD_S * PERIOD_S + PERIOD_S
        start = end - TRAFFIC_S
        calls: dict[float, float] = {}
        p50: dict[float, float] = {}
        p99: dict[float, float] = {}
        for v in ep.variants:
            dims = [{"Name": "EndpointName", "Value": ep.name}, {"Name": "VariantName", "Value": v.name}]
            for when, count in stat_values(store, {"Namespace": NAMESPACE, "MetricName": "Invocations",
                                                   "Dimensions": dims}, "Sum", start, end, PERIOD_S).items():
                calls[when] = calls.get(when, 0.0) + count / PERIOD_S
            latency = {"Namespace": NAMESPACE, "MetricName": "ModelLatency", "Dimensions": dims}
            for into, stat in ((p50, "p50"), (p99, "p99")):  # the busiest variant's, when there are several
                for when, us in stat_values(store, latency, stat, start, end, PERIOD_S).items():
                    into[when] = max(into.get(when, 0.0), us / 1000)
        return {"start": start, "period": PERIOD_S, "per_second": sorted(calls.items()),
                "p50_ms": sorted(p50.items()), "p99_ms": sorted(p99.items())}

    def _scaling(self, region: str) -> list[dict[str, Any]]:
        """Each scalable target: its bounds and capacity now, its policies' alarms, its activities."""
        alarms = {a.name: a for a in self.cloudwatch.alarms(region)}
        by_target: dict[tuple, list[str]] = {}
        for policy in self.autoscaling.policies(region):
            spec = policy.spec
            key = (spec["ServiceNamespace"], spec["ResourceId"], spec["ScalableDimension"])
            by_target.setdefault(key, []).extend(a["AlarmName"] for a in policy.alarms)
        out = []
        for target in self.autoscaling.targets(region):
            spec = target.spec
            try:
                current: int | None = self.autoscaling.capacity.current(region, spec["ResourceId"],
                                                                         spec["ScalableDimension"])
            except Exception:  # the resource is gone: the target stays until deregistered
                current = None
            out.append({"region": region, "resource_id": spec["ResourceId"], "dimension": spec["ScalableDimension"],
                        "min": spec["MinCapacity"], "max": spec["MaxCapacity"], "current": current,
                        "alarms": [{"name": n, "state": alarms[n].state} for n in by_target.get(target.key, [])
                                   if n in alarms],
                        "activities": [{"status": a.get("StatusCode"), "description": a.get("Description"),
                                        "cause": a.get("Cause"), "start": a.get("StartTime")}
                                       for a in target.activities[-5:]]})
        return out


def _jobs(backend: Any) -> list[dict[str, Any]]:
    return [{"name": j.name, "region": backend.region, "status": j.status.value, "endpoint": j.endpoint_name,
             "failure_reason": j.failure_reason, "started": j.started, "ended": j.ended}
            for j in backend.tables["ai-benchmark-job"].values()]


def _routers(backend: Any) -> list[dict[str, Any]]:
    return [{"name": r.name, "region": backend.region, "status": r.status.value,
             "targets": [{"name": t["Name"], "destinations": [d["ResourceArn"] for d in t["Destinations"]]}
                         for t in r.targets]}
            for r in backend.inference_routers.values()]
