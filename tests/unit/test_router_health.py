"""What a router makes of its own attempts: slow against itself, slow against the others,
failing, probed once per interval, and cleared by one good answer."""

from sagemaker_emu.runtime.router_health import RouterHealth


def test_a_destination_that_slows_down_is_degraded_against_its_own_best():
    health = RouterHealth()
    for _ in range(5):
        health.answered("r", "near", 0.005)
    assert health.degraded("r", ["near", "far"]) == set()  # far is unknown: judged by load alone
    health.answered("r", "near", 0.005 + 0.2)
    assert health.degraded("r", ["near", "far"]) == {"near"}


def test_one_stray_slow_answer_is_noise_and_small_differences_are_too():
    health = RouterHealth()
    for _ in range(5):
        health.answered("r", "near", 0.005)
    health.answered("r", "near", 0.050)
    assert health.degraded("r", ["near"]) == set()
    health.answered("r", "a", 0.001)
    health.answered("r", "b", 0.004)  # four times as slow, but by 3 ms only
    assert health.degraded("r", ["a", "b"]) == set()


def test_a_destination_slower_than_another_heard_lately_is_degraded():
    health = RouterHealth()
    health.answered("r", "far", 0.005)
    health.answered("r", "near", 0.060)  # never seen well: judged against far
    assert health.degraded("r", ["near", "far"]) == {"near"}
    assert health.degraded("other-router", ["near", "far"]) == set()  # each router keeps its own view


def test_failing_degrades_until_an_answer_and_a_good_probe_clears_a_slow_one_at_once():
    health = RouterHealth()
    health.answered("r", "near", 0.005)
    health.failed("r", "near")
    assert health.degraded("r", ["near"]) == {"near"}
    health.answered("r", "near", 0.005)
    assert health.degraded("r", ["near"]) == set()
    for _ in range(10):
        health.answered("r", "near", 0.2)
    assert health.degraded("r", ["near"]) == {"near"}
    health.answered("r", "near", 0.006)
    assert health.degraded("r", ["near"]) == set()


def test_probes_are_spaced_by_the_interval_on_the_emulators_clock():
    stopped = RouterHealth(wall=lambda s: s * 1e6)  # a clock so slow the interval never passes here
    assert stopped.probe("r", "near") and not stopped.probe("r", "near")
    racing = RouterHealth(wall=lambda s: 0.0)  # so fast every call is due
    assert racing.probe("r", "near") and racing.probe("r", "near")
