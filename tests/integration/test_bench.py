"""The benchmarks run and print well-formed results. Their numbers are for the reports in
docs/, never asserted here."""

import json
import subprocess
import sys
from pathlib import Path


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sagemaker_emu", "bench", *args],
                          capture_output=True, text=True, timeout=300)


def test_routing_quick(tmp_path):
    out = tmp_path / "routing.json"
    result = bench("routing", "--quick", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "codegen, profile serial" in result.stdout
    header = next(line for line in result.stdout.splitlines() if line.startswith("| users x inst"))
    assert "p99 / RANDOM" in header and "p99 / IDEAL" in header and "p99 / model" in header
    data = json.loads(out.read_text())
    assert [(r["strategy"], r["users"], r["instances"]) for r in data["results"]] == [
        ("RANDOM", 3, 2), ("LEAST_OUTSTANDING_REQUESTS", 3, 2), ("IDEAL", 3, 2)]
    for r in data["results"]:
        assert r["requests"] > 0 and r["errors"] == 0
        assert 0 < r["p50_s"] <= r["p90_s"] <= r["p99_s"]
        assert r["model_p99_s"] > 0  # bench queueing's, for the same point and seed


def test_routing_quick_streaming_reports_time_to_first_token(tmp_path):
    out = tmp_path / "routing.json"
    result = bench("routing", "--quick", "--stream", "--strategies", "LEAST_OUTSTANDING_REQUESTS",
                   "--json", str(out))
    assert result.returncode == 0, result.stderr
    (r,) = json.loads(out.read_text())["results"]
    assert r["errors"] == 0 and 0 < r["ttft_p50_s"] < r["p50_s"]


def test_routing_quick_over_inference_components(tmp_path):
    out = tmp_path / "routing.json"
    result = bench("routing", "--quick", "--inference-components", "2", "--strategies",
                   "RANDOM,LEAST_OUTSTANDING_REQUESTS,IDEAL", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "on inference components: 2 per endpoint" in result.stdout
    for r in json.loads(out.read_text())["results"]:
        assert r["requests"] > 0 and r["errors"] == 0
        assert r["model_p99_s"] is None  # copies on CPU hosts, spread over components: not modelled


def test_routing_quick_on_a_mixed_fleet_beside_the_uniform_one(tmp_path):
    out = tmp_path / "routing.json"
    result = bench("routing", "--quick", "--fleet", "uniform,mixed", "--strategies",
                   "RANDOM,LEAST_OUTSTANDING_REQUESTS", "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "mixed fleet (50% ml.g5.2xlarge + 50% ml.g6e.2xlarge)" in result.stdout
    assert "fleets side by side (same run)" in result.stdout
    results = json.loads(out.read_text())["results"]
    assert sorted((r["fleet"], r["strategy"]) for r in results) == [
        ("mixed", "LEAST_OUTSTANDING_REQUESTS"), ("mixed", "RANDOM"),
        ("uniform", "LEAST_OUTSTANDING_REQUESTS"), ("uniform", "RANDOM")]
    assert all(r["requests"] > 0 and r["errors"] == 0 for r in results)


def test_pools_bench_counts_every_call_while_the_fleet_changes_shape():
    result = bench("pools", "--callers", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verdict: no failed call" in result.stdout
    rows = {line.split("|")[1].strip(): line for line in result.stdout.splitlines() if line.startswith("| ")}
    assert "ml.g6e.2xlarge 2, ml.g5.2xlarge 6" in rows["pool fallback"]  # it fell back, then scaled in
    assert rows["consolidation"].rstrip(" |-").endswith("-> 3")  # three copies on one instance


def test_overhead_and_pick_run():
    result = bench("overhead", "--calls", "40", "--threads", "1,2")
    assert result.returncode == 0, result.stderr
    assert "through emulator (raw HTTP)" in result.stdout and "emulator adds" in result.stdout
    result = bench("pick", "--picks", "200")
    assert result.returncode == 0, result.stderr
    assert "PREFIX_AWARE" in result.stdout and "200 instances (us)" in result.stdout


def test_compare_runs_two_trees_side_by_side():
    tree = str(Path(__file__).resolve().parents[2])  # this checkout against itself
    result = bench("compare", "--before", tree, "--after", tree, "--rounds", "2", "--calls", "20")
    assert result.returncode == 0, result.stderr
    assert "after: worker directly" in result.stdout and "after / before" in result.stdout
    result = bench("compare", "--before", "/nonexistent")
    assert result.returncode == 2 and "is not a sagemaker-emu source tree" in result.stderr


def test_chaos_short_run_keeps_its_promises():
    # The properties are the issue's, not timings: no call run twice, no caller left hanging,
    # no failure away from a killed or stopped instance, no worker left after the server dies.
    result = bench("chaos", "--seconds", "8", "--interval", "1", "--callers", "8")
    assert "| sent | succeeded |" in result.stdout, result.stderr
    assert result.returncode == 0, result.stdout


def test_soak_prints_its_samples():
    result = bench("soak", "--minutes", "0.2", "--sample-seconds", "4", "--callers", "1")
    assert "| t (s) | RSS (MB) | threads | fds |" in result.stdout, result.stderr
    assert "verdict:" in result.stdout and result.returncode in (0, 1)  # 12 s is too short to judge growth


def test_the_issue_14_and_15_benches_run_small():
    """model-data, async, record and autoscaling, each cut down to a few seconds."""
    result = bench("model-data", "--mib", "2", "--endpoints", "2", "--instances", "1")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| embedded") or line.startswith("| external")]
    assert len(rows) == 2 and all(row.split("|")[5].strip() == "1" for row in rows)  # one download each
    result = bench("async", "--requests", "20", "--kib", "1", "--instances", "1")
    assert result.returncode == 0, result.stderr
    assert [line.split("|")[-2].strip() for line in result.stdout.splitlines()[-2:]] == ["2", "20"]  # all in S3
    result = bench("record", "--calls", "200", "--rounds", "2")
    assert result.returncode == 0, result.stderr
    assert "added by CloudWatch" in result.stdout
    result = bench("autoscaling", "--ramp-s", "2", "--hold-s", "4", "--trickle-s", "1", "--callers", "4")
    assert result.returncode == 0, result.stderr
    assert "failed calls: 0" in result.stdout.splitlines()[-1]


def test_router_bench_prints_each_phase():
    result = bench("router", "--threads", "2", "--calls", "20", "--slow-ms", "5")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("|") and "phase" not in line
            and not line.startswith("|-")]
    assert [r.split("|")[1].strip() for r in rows] == [
        "direct to near (baseline)", "direct to pool: LOR over the far instances", "all healthy", "near slow",
        "near throttling", "near deleted mid-load"]
    assert "(local-preferred)" in rows[2] and "(failover)" in rows[4] and "(capacity-available)" in rows[5]
    assert "p99 through the router / p99 of LOR over the far instances" in result.stdout
    result = bench("router", "--overhead", "--calls", "20", "--rounds", "2")
    assert result.returncode == 0, result.stderr
    assert "InvokeInferenceRouter adds" in result.stdout.splitlines()[-1]


def test_density_bench_measures_both_ways_a_worker_starts():
    result = bench("density", "--instances", "4", "--calls", "1")
    assert result.returncode == 0, result.stderr
    rows = [line.split("|") for line in result.stdout.splitlines() if line.startswith(("|  fork", "|  exec"))]
    assert [row[1].strip() for row in rows] == ["fork", "exec"] and all(row[2].strip() == "4" for row in rows)
    assert result.stdout.splitlines()[-1].startswith("fork / exec: time to InService")
