"""Placement of inference-component copies on an endpoint's instances."""

from sagemaker_emu.fleet.placement import Host, Need, Placement, hardware


def hosts(n: int, instance_type: str = "ml.g5.12xlarge") -> list[Host]:
    return [Host(f"h{i}", instance_type, hardware(instance_type)) for i in range(1, n + 1)]


def test_the_table_has_the_published_hardware():
    assert hardware("ml.g5.12xlarge").accelerators == 4 and hardware("ml.g5.12xlarge").memory_mb == 196608
    assert hardware("ml.p4d.24xlarge").accelerators == 8 and hardware("ml.m5.large").accelerators == 0
    assert hardware("ml.nothing.large") is None


def test_copies_never_over_commit_accelerators():
    placement = Placement(hosts(2))
    placed = [placement.reserve(f"c{i}", Need(accelerators=1, memory_mb=1024)) for i in range(10)]
    assert [h is not None for h in placed] == [True] * 8 + [False] * 2  # 2 hosts x 4 GPUs
    for host in placement.hosts:
        assert sum(n.accelerators for n in host.reserved.values()) <= host.hardware.accelerators


def test_spread_alternates_and_binpack_fills_one_host_first():
    spread = Placement(hosts(2))
    assert [spread.reserve(f"c{i}", Need(accelerators=1)).id for i in range(4)] == ["h1", "h2", "h1", "h2"]
    binpack = Placement(hosts(2))
    assert [binpack.reserve(f"c{i}", Need(accelerators=1), "BINPACK").id for i in range(5)] == ["h1"] * 4 + ["h2"]


def test_memory_and_cpus_count_too_and_release_frees_room():
    placement = Placement(hosts(1, "ml.m5.large"))  # 2 vCPUs, 8 GiB, no accelerator
    assert placement.reserve("a", Need(memory_mb=6000, cpus=1)) is not None
    assert placement.reserve("b", Need(memory_mb=3000, cpus=1)) is None  # memory
    assert placement.reserve("c", Need(accelerators=1, memory_mb=10)) is None  # no accelerator
    placement.release("a")
    assert placement.reserve("b", Need(memory_mb=3000, cpus=2)) is not None


def test_managed_scaling_adds_instances_up_to_the_max_and_releases_empty_ones_down_to_the_min():
    numbers = iter(range(2, 100))
    placement = Placement(hosts(1, "ml.g5.xlarge"),
                          lambda fits: Host(f"h{next(numbers)}", "ml.g5.xlarge", hardware("ml.g5.xlarge")),
                          min_hosts=0, max_hosts=3)
    placed = [placement.reserve(f"c{i}", Need(accelerators=1)) for i in range(4)]
    assert [h.id if h else None for h in placed] == ["h1", "h2", "h3", None]  # one GPU each, three at most
    placement.release("c1")
    placement.release("c2")
    assert [h.id for h in placement.hosts] == ["h1"]
    placement.release("c0")
    assert placement.hosts == []  # MinInstanceCount 0


def test_without_managed_scaling_instances_stay():
    placement = Placement(hosts(1, "ml.g5.xlarge"))
    assert placement.reserve("a", Need(accelerators=1)) is not None
    assert placement.reserve("b", Need(accelerators=1)) is None
    placement.release("a")
    assert len(placement.hosts) == 1


def test_with_a_need_per_instance_type_copies_go_only_to_hosts_of_a_named_type():
    g5, g6e = hosts(1, "ml.g5.12xlarge"), [Host("x1", "ml.g6e.12xlarge", hardware("ml.g6e.12xlarge"))]
    placement = Placement(g5 + g6e)
    needs = {"ml.g6e.12xlarge": Need(accelerators=2), "ml.g5.12xlarge": Need(accelerators=4)}
    placed = [placement.reserve(f"c{i}", Need(), needs=needs) for i in range(4)]
    assert [h.id if h else None for h in placed] == ["x1", "h1", "x1", None]  # 4 GPUs each: one copy, or two
    assert placement.hosts[1].reserved == {"c0": Need(accelerators=2), "c2": Need(accelerators=2)}
    only_g6e = Placement(hosts(1, "ml.g5.12xlarge"))
    assert only_g6e.reserve("c", Need(), needs={"ml.g6e.12xlarge": Need(accelerators=1)}) is None
