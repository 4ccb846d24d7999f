"""`bench queueing`'s model: closed-loop users on serial llm-sim servers, in arithmetic.

The cases have answers known without the model: one user waits only for llm-sim's own time
(its documented formula); users on one server queue behind each other; with equal requests,
fewest-outstanding is as good as the central queue and random is not."""

import json
import random

import pytest

from sagemaker_emu.bench import queueing
from sagemaker_emu.bench.queueing import fleet_types, simulate
from sagemaker_emu.bench.workloads import WORKLOADS, Workload, words
from sagemaker_emu.fleet.speed import speeds

G5, G6E = "ml.g5.2xlarge", "ml.g6e.2xlarge"


class Fixed(Workload):
    """Every request `n_in` prompt tokens (distinct words) and `n_out` output tokens."""

    def __init__(self, n_in: int = 100, n_out: int = 40) -> None:
        super().__init__("fixed", f"{n_in} in, {n_out} out")
        self.n_in, self.n_out = n_in, n_out

    def request(self, rng: random.Random, user: int) -> tuple[bytes, int]:
        return json.dumps({"inputs": words(rng, self.n_in), "parameters": {"max_new_tokens": self.n_out}}).encode(), self.n_out


def solo(instance_type: str, n_in: int = 100, n_out: int = 40) -> float:
    """llm-sim's documented time, at scale 1: 20 ms + 0.25 ms a prompt token, then 25 ms an
    output token, prefill and decode divided by the type's speeds."""
    prefill, decode = speeds(instance_type)
    return (20 + 0.25 * n_in) / 1000 / prefill + 0.025 * n_out / decode


def run(strategy: str, users: int, types: list[str], **kw) -> queueing.Outcome:
    args = {"seed": 1, "warmup": 10.0, "duration": 60.0, "time_scale": 1.0, **kw}
    return simulate(Fixed(), users, types, strategy, **args)


def test_one_user_waits_for_llm_sims_own_time_at_its_instance_types_speed():
    for instance_type in (G5, G6E):
        out = run("RANDOM", 1, [instance_type])
        assert out.p50_s == pytest.approx(solo(instance_type)) and out.p99_s == pytest.approx(solo(instance_type))
    assert solo(G5) == pytest.approx(1.045)
    assert solo(G6E) < solo(G5)


def test_users_on_one_instance_wait_for_each_other():
    out = run("LEAST_OUTSTANDING_REQUESTS", 4, [G5])
    assert out.p50_s == pytest.approx(4 * solo(G5)) and out.p99_s == pytest.approx(4 * solo(G5))
    assert out.per_minute == pytest.approx(60 / solo(G5), rel=0.03)


@pytest.mark.parametrize("strategy", ["LEAST_OUTSTANDING_REQUESTS", "IDEAL"])
def test_equal_requests_spread_evenly_by_fewest_outstanding_and_by_the_central_queue(strategy):
    out = run(strategy, 8, [G5] * 4)
    assert out.p99_s == pytest.approx(2 * solo(G5))


def test_random_queues_some_requests_behind_more_than_their_share():
    out = run("RANDOM", 8, [G5] * 4)
    assert out.p99_s >= 3 * solo(G5) - 1e-9


def test_the_fastest_free_instance_for_ideal_fast_and_any_for_ideal():
    assert run("IDEAL_FAST", 1, [G5, G6E]).p99_s == pytest.approx(solo(G6E))
    ideal = run("IDEAL", 1, [G5, G6E])
    assert ideal.p99_s == pytest.approx(solo(G5)) and ideal.p50_s in (pytest.approx(solo(G5)), pytest.approx(solo(G6E)))


def test_think_time_leaves_a_free_instance_for_every_request_under_fewest_outstanding():
    busy = run("LEAST_OUTSTANDING_REQUESTS", 2, [G5, G5])
    thinking = run("LEAST_OUTSTANDING_REQUESTS", 2, [G5, G5], think_s=0.5)
    assert thinking.p99_s == pytest.approx(solo(G5))
    assert thinking.per_minute < busy.per_minute


def test_a_seed_repeats_its_numbers_and_another_seed_draws_other_requests():
    codegen = WORKLOADS["codegen"]
    kw = {"warmup": 2.0, "duration": 30.0, "time_scale": 0.05}
    first = simulate(codegen, 8, fleet_types("mixed", 4), "LEAST_OUTSTANDING_REQUESTS", seed=3, **kw)
    assert simulate(codegen, 8, fleet_types("mixed", 4), "LEAST_OUTSTANDING_REQUESTS", seed=3, **kw) == first
    assert simulate(codegen, 8, fleet_types("mixed", 4), "LEAST_OUTSTANDING_REQUESTS", seed=4, **kw) != first


def test_the_mixed_fleet_is_bench_routings_pools():
    assert fleet_types("uniform", 3) == [G5] * 3
    assert fleet_types("mixed", 10) == [G5] * 5 + [G6E] * 5


def test_prompts_that_share_prefixes_are_not_modelled():
    with pytest.raises(ValueError, match="keeps no cache"):
        simulate(WORKLOADS["chat-shared-prefix"], 2, [G5], "RANDOM", seed=1, warmup=1, duration=1, time_scale=1)


def test_the_command_prints_the_long_run_and_the_spread_of_short_runs(capsys, tmp_path):
    out = tmp_path / "queueing.json"
    assert queueing.main(["--points", "4x2", "--runs", "3", "--duration", "5", "--long", "20",
                          "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "the long run: 20 s" in printed and "3 runs of 5 s (seeds 1 to 3)" in printed
    data = json.loads(out.read_text())
    assert [(p["fleet"], len(p["runs"])) for p in data["points"]] == [("uniform", 3), ("mixed", 3)]
    assert set(data["points"][0]["long"]) == set(queueing.STRATEGIES)
