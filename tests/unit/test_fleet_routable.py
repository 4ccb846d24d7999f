"""The fleet's view for routing: only routable instances, one cached tuple per health state.
Instances are built but never started (no process is the neighbour here)."""

from pathlib import Path

from sagemaker_emu.fleet.fleet import ProcessDeployer, ProcessFleet, VariantFleet
from sagemaker_emu.fleet.images import Launch
from sagemaker_emu.fleet.instance import Health, Instance


def fleet_of(n: int) -> tuple[ProcessFleet, list[Instance]]:
    fleet = ProcessFleet("ep", ProcessDeployer(Path("/nonexistent")))
    instances = [Instance(f"v-{k}", "v", Launch(builtin="echo"), {}, Path("/m"), Path("/l")) for k in range(n)]
    for i in instances:
        i.on_change = fleet.routing_changed  # as the fleet wires the instances it starts
        i.health = Health.HEALTHY
    fleet.variants["v"] = VariantFleet("v", Launch(builtin="echo"), {}, None, 60, Path("/d"), instances=instances)
    return fleet, instances


def test_unhealthy_draining_and_suspect_instances_are_not_offered():
    fleet, (a, b, c, d) = fleet_of(4)
    b.health = Health.UNHEALTHY
    c.health = Health.DRAINING
    d.suspect = True
    assert fleet.instances("v") == (a,)
    d.suspect = False
    assert fleet.instances("v") == (a, d)
    assert fleet.instances("other") == ()


def test_the_same_tuple_until_health_changes():
    fleet, (a, b) = fleet_of(2)
    first = fleet.instances("v")
    a.load.in_flight = 5  # load changes do not rebuild: strategies read it live
    assert fleet.instances("v") is first
    b.health = Health.UNHEALTHY
    assert fleet.instances("v") is not first and fleet.instances("v") == (a,)


def test_a_health_change_in_one_fleet_leaves_another_fleets_view_alone():
    """Issue 12: one module-global epoch made every fleet rebuild on any health change."""
    one, (a, _) = fleet_of(2)
    two, (c, _) = fleet_of(2)
    view = two.instances("v")
    a.health = Health.UNHEALTHY
    assert two.instances("v") is view and one.instances("v") != view
