"""The live view at /_emu/ui, driven in headless Chromium (Debian's, through Playwright): it loads
with no console error and no request leaving 127.0.0.1, its in-flight bars move under load and
its served counts match /_emu/endpoints/<name>, a scale-out shows up within 2 s of
DescribeEndpoint showing it, a page from another origin cannot use its actions, and it works
under --auth sigv4 with its token."""

from __future__ import annotations

import http.server
import io
import json
import os
import tarfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from sagemaker_emu.testing import EmulatorProcess, client, deploy
from tests.integration.installs import wait_for_install
from tests.integration.test_inference_components import ic_endpoint
from tests.integration.test_sagemaker_ai_benchmarks import AIPERF, FAST, ended, job, workload
from tests.integration.test_sagemaker_ai_benchmarks import STATUS as AIPERF_STATUS
from tests.integration.test_fleet import eventually

CHROMIUM = "/usr/bin/chromium"  # Debian's package
HOW = "`apt-get install chromium` as root (.ci/run does it)"

# As the machine notes say: without the background-networking flags Chromium tries to reach
# Google's hosts at every start, which this closed network refuses.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("SAGEMAKER_EMU_SCREENSHOTS", "")) if os.environ.get("SAGEMAKER_EMU_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def browser():
    # .ci/run installs Chromium while the other tests run (these sort last): wait for it there;
    # elsewhere, without it, skip saying how to get it.
    wait_for_install(os.environ.get("SAGEMAKER_EMU_BROWSER_STATUS"), CHROMIUM, "Chromium", HOW)
    from playwright.sync_api import sync_playwright  # the dev extra: `make test` installs it

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def watched(browser, server):
    """A page of the live view, with every console error and every request it made recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server.url + "/_emu/ui")
    shown(page, "document.getElementById('status').textContent.startsWith('live')")
    yield page, errors, requests
    context.close()


def shown(page, expression: str, timeout: float = 15.0) -> None:
    """Wait until `expression` is true in the page. (Playwright's wait_for_function evaluates its
    predicate with eval, which the page's Content-Security-Policy rightly forbids.)"""
    eventually(lambda: page.evaluate(expression), timeout=timeout, interval=0.05)


def count(endpoint: str) -> str:
    return f"document.querySelectorAll('article[data-endpoint=\"{endpoint}\"] tr[data-instance-id]').length"


def rows(page, endpoint: str) -> dict[str, dict[str, int]]:
    """Each instance row the page shows for the endpoint: its served and in-flight counts."""
    return page.evaluate("""(name) => Object.fromEntries(
        [...document.querySelectorAll(`article[data-endpoint="${name}"] tr[data-instance-id]`)].map(
          (r) => [r.dataset.instanceId, {served: +r.dataset.served, in_flight: +r.dataset.inFlight}]))""", endpoint)


def test_the_page_loads_with_no_console_error_and_no_request_leaving_loopback(watched, server, sm):
    page, errors, requests = watched
    deploy(sm, "shown", InitialInstanceCount=2)
    page.wait_for_selector('article[data-endpoint="shown"] tr[data-instance-id]')
    assert page.locator("h1").inner_text().startswith("sagemaker-emu")
    assert errors == []
    assert requests and all(url.startswith(server.url + "/") for url in requests), requests
    for theme in ("light", "dark"):
        page.evaluate(f"document.documentElement.dataset.theme = '{theme}'")
        if SHOTS:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"live-view-{theme}.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone's width: nothing wider than the page
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    if SHOTS:
        page.screenshot(path=str(SHOTS / "live-view-phone.png"), full_page=True)


def test_under_load_the_in_flight_bars_move_and_the_served_counts_match(watched, server, sm, rt):
    page, errors, _ = watched
    deploy(sm, "busy", InitialInstanceCount=4, environment={"ECHO_LATENCY_MS": "40"})
    shown(page, count("busy") + " == 4")
    stop = threading.Event()

    def caller() -> None:
        while not stop.is_set():
            rt.invoke_endpoint(EndpointName="busy", Body=b"x")

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
    seen: set[tuple[int, ...]] = set()
    try:
        eventually(lambda: seen.add(tuple(r["in_flight"] for r in rows(page, "busy").values())) or
                   len({s for s in seen if any(s)}) >= 3, timeout=20, interval=0.1)  # bars with calls, changing
        if SHOTS:
            page.screenshot(path=str(SHOTS / "live-view-load.png"), full_page=True)
    finally:
        stop.set()
        for t in threads:
            t.join()
    view = server.endpoint_view("busy")["variants"][0]["instances"]
    truth = {i["id"]: i["served"] for i in view}
    eventually(lambda: {k: v["served"] for k, v in rows(page, "busy").items()} == truth, timeout=5)
    assert sum(truth.values()) > 0 and errors == []


def test_a_scale_out_shows_the_new_instance_within_two_seconds(watched, sm):
    page, _, _ = watched
    deploy(sm, "grows", InitialInstanceCount=1)
    shown(page, count("grows") + " == 1")
    sm.update_endpoint_weights_and_capacities(EndpointName="grows", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])
    eventually(lambda: sm.describe_endpoint(EndpointName="grows")["ProductionVariants"][0]["CurrentInstanceCount"] == 2,
               timeout=30, interval=0.02)
    described = time.monotonic()
    shown(page, count("grows") + " == 2", timeout=2.0)
    assert time.monotonic() - described < 2.0


def test_a_blue_green_update_shows_the_new_fleets_share_and_serverless_its_cold_starts(watched, sm, rt):
    page, errors, _ = watched
    deploy(sm, "bg")
    sm.create_endpoint_config(EndpointConfigName="bg-green", ProductionVariants=[{
        "VariantName": "Green", "ModelName": "bg-model", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.update_endpoint(EndpointName="bg", EndpointConfigName="bg-green", DeploymentConfig={
        "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {  # bakes for an hour: the share stays
            "Type": "CANARY", "WaitIntervalInSeconds": 3600, "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50}},
            "TerminationWaitInSeconds": 0}})

    def baking() -> dict | None:
        pending = sm.describe_endpoint(EndpointName="bg").get("PendingDeploymentSummary")
        variant = pending["ProductionVariants"][0] if pending else None
        return variant if variant and variant["VariantStatus"][0]["Status"] == "Baking" else None

    variant = eventually(baking, timeout=30)
    share = variant["CurrentWeight"] / variant["DesiredWeight"]
    shown(page, "(() => { const d = document.querySelector('article[data-endpoint=\"bg\"] .deployment');"
                f" return d !== null && Math.abs(+d.dataset.share - {share}) < 1e-9; }})()")
    deploy(sm, "cold", variants=[{"VariantName": "AllTraffic", "ModelName": "cold-model",
                                  "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}}])
    rt.invoke_endpoint(EndpointName="cold", Body=b"x")  # the first call starts it: a cold start
    shown(page, "document.querySelector('article[data-endpoint=\"cold\"] .cold-starts')?.textContent"
                " === ' · cold starts 1'")
    assert errors == []


LLM = {"Image": "sagemaker-emu/llm-sim", "Environment": {
    "LLM_SIM_PREFILL_BASE_MS": "1", "LLM_SIM_PREFILL_MS_PER_TOKEN": "0", "LLM_SIM_DECODE_MS_PER_TOKEN": "1"}}


def test_each_instance_shows_its_model_and_its_containers_prefix_cache_hit_rate(watched, server, sm, rt):
    page, errors, _ = watched
    deploy(sm, "cached", container=LLM, InitialInstanceCount=2, RoutingConfig={"RoutingStrategy": "RANDOM"})
    shared = "You are a careful assistant who answers in one line. " * 8
    for n in range(12):  # a long shared prefix, asked again and again: hits wherever it lands twice
        rt.invoke_endpoint(EndpointName="cached", ContentType="application/json", Body=json.dumps(
            {"inputs": f"{shared} question {n}", "parameters": {"max_new_tokens": 2}}))
    truth = {}
    for instance in server.endpoint_view("cached")["variants"][0]["instances"]:  # each container's own count
        with urllib.request.urlopen(f"http://127.0.0.1:{instance['port']}/kv-events?after=0") as answer:
            report = json.load(answer)
        truth[instance["id"]] = report["hit_tokens"] / report["queried_tokens"] if report["queried_tokens"] else ""
    assert any(rate and rate > 0.5 for rate in truth.values()), truth
    cells = """(name) => Object.fromEntries([...document.querySelectorAll(
        `article[data-endpoint="${name}"] tr[data-instance-id]`)].map((r) => [r.dataset.instanceId,
        [r.querySelector("td.cache")?.dataset.hitRate, r.children[2].textContent]]))"""

    def matches() -> bool:
        shownrates = page.evaluate(cells, "cached")
        return shownrates.keys() == truth.keys() and all(
            (model == "cached-model" and (rate == "" if truth[i] == "" else abs(float(rate) - truth[i]) < 1e-9))
            for i, (rate, model) in shownrates.items())

    eventually(matches, timeout=10)
    if SHOTS:
        page.locator('article[data-endpoint="cached"]').screenshot(path=str(SHOTS / "live-view-cache.png"))
    assert errors == []


def test_a_rolling_update_of_a_component_shows_its_old_and_new_copies(watched, server, sm):
    page, errors, _ = watched
    for model in ("roll-v1", "roll-v2"):
        sm.create_model(ModelName=model, PrimaryContainer={"Image": "sagemaker-emu/echo"})
    ic_endpoint(sm, "rolling")
    spec = {"ComputeResourceRequirements": {"NumberOfAcceleratorDevicesRequired": 1, "MinMemoryRequiredInMb": 1024}}
    sm.create_inference_component(InferenceComponentName="svc", EndpointName="rolling", VariantName="AllTraffic",
                                  Specification={"ModelName": "roll-v1", **spec}, RuntimeConfig={"CopyCount": 2})
    eventually(lambda: sm.describe_inference_component(InferenceComponentName="svc")[
        "InferenceComponentStatus"] == "InService", timeout=60)
    sm.update_inference_component(  # one copy at a time, and an hour between: it stays half way
        InferenceComponentName="svc", Specification={"ModelName": "roll-v2", **spec},
        DeploymentConfig={"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "COPY_COUNT", "Value": 1},
                                                  "WaitIntervalInSeconds": 3600}})
    # (the next test's reset ends the hour's wait: a component cannot be deleted while it updates)
    eventually(lambda: sorted(c["model"] for c in server.endpoint_view("rolling")["inference_components"]["svc"][
        "copies"]) == ["roll-v1", "roll-v2"], timeout=60)
    line = "document.querySelector('article[data-endpoint=\"rolling\"] [data-component=\"svc\"]')?.textContent"
    shown(page, f"{line}?.endsWith('Updating · copies: 1 of roll-v1, 1 of roll-v2')"
                f" || {line}?.endsWith('Updating · copies: 1 of roll-v2, 1 of roll-v1')")
    variant = page.locator('article[data-endpoint="rolling"] p.variant').first.inner_text()
    assert variant.endswith("· ml.g5.12xlarge"), variant  # its hosts' type: not a serverless variant
    if SHOTS:
        page.locator('article[data-endpoint="rolling"]').screenshot(path=str(SHOTS / "live-view-rolling.png"))
    assert errors == []


def test_a_routers_share_per_destination_matches_what_its_answers_said(watched, server, sm):
    page, errors, _ = watched
    west = client(server.url, region="us-west-2")
    deploy(sm, "near")
    deploy(west, "far")
    arns = [c.describe_endpoint(EndpointName=n)["EndpointArn"] for c, n in ((sm, "near"), (west, "far"))]
    sm.create_inference_router(InferenceRouterName="shared", RoutingTargets=[{"Name": "echo", "Destinations": [
        {"ResourceArn": a} for a in arns]}])
    eventually(lambda: sm.describe_inference_router(InferenceRouterName="shared")["Status"] ==
               "InService", timeout=30)
    runtime = client(server.url, "sagemaker-inference-router-runtime")
    said: dict[str, dict[str, int]] = {}
    for n in range(10):  # the local endpoint, until it throttles: the router moves away from it
        if n == 5:
            server.post("/_emu/faults", b'{"kind": "throttle", "endpoint": "near", "times": 1}',
                        {"Content-Type": "application/json"})
        answer = runtime.invoke_inference_router(InferenceRouterName="shared", RoutingTargetName="echo", Body=b"{}",
                                                 ContentType="application/json")
        reasons = said.setdefault(answer["InvokedRoutedResourceArn"], {})
        reasons[answer["RoutingReason"]] = reasons.get(answer["RoutingReason"], 0) + 1
    assert len(said) == 2, said
    rows = """() => Object.fromEntries([...document.querySelectorAll('tr[data-router="shared"]')].map((r) =>
        [r.dataset.destination, [+r.dataset.calls, r.children[3].textContent,
                                 +r.querySelector('[role=meter]').getAttribute('aria-valuenow')]]))"""
    expected = {arn: [sum(reasons.values()),
                      ", ".join(f"{why} {n}" for why, n in sorted(reasons.items())),
                      round(100 * sum(reasons.values()) / 10)] for arn, reasons in said.items()}

    def same() -> bool:
        seen = page.evaluate(rows)
        return seen.keys() == expected.keys() and all(
            seen[a][0] == e[0] and seen[a][2] == e[2] and sorted(seen[a][1].split(", ")) == sorted(e[1].split(", "))
            for a, e in expected.items())

    eventually(same, timeout=10)
    if SHOTS:
        page.locator("#routers").screenshot(path=str(SHOTS / "live-view-router.png"))
    assert errors == []


def test_a_completed_benchmark_jobs_percentiles_are_charted_as_aiperf_exported_them(browser):
    wait_for_install(AIPERF_STATUS, AIPERF, "NVIDIA AIPerf", "make test, or make install-aiperf,")
    srv = EmulatorProcess(env={"SAGEMAKER_EMU_AIPERF": AIPERF})
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        sm, s3 = client(srv.url), client(srv.url, "s3")
        deploy(sm, "chat", container={"Image": "sagemaker-emu/llm-sim", "Environment": FAST})
        s3.create_bucket(Bucket="results")
        workload(sm, "small", concurrency=2, request_count=10, prompt_input_tokens_mean=32, output_tokens_mean=8)
        job(sm, "charted", "small")
        page = context.new_page()
        page.goto(srv.url + "/_emu/ui")
        assert ended(sm, "charted")["AIBenchmarkJobStatus"] == "Completed"
        archive = s3.get_object(Bucket="results", Key="bench/charted/output.tar.gz")["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            export = json.load(tar.extractfile("profile_export_aiperf.json"))  # type: ignore[arg-type]
        figure = 'document.querySelector(\'figure[data-job="charted"]\')'
        shown(page, f"{figure} !== null")
        charted = json.loads(page.evaluate(f"{figure}.dataset.summary"))
        for metric in ("time_to_first_token", "inter_token_latency", "request_latency"):
            assert charted[metric] == {k: export[metric][k] for k in ("unit", "avg", "p50", "p90", "p99")}, metric
        assert charted["request_throughput"]["avg"] == export["request_throughput"]["avg"]
        assert page.evaluate(f"{figure}.querySelectorAll('rect').length") == 12  # four bars for each of three
        if SHOTS:
            page.locator("#benchmarks").screenshot(path=str(SHOTS / "live-view-benchmark.png"))
    finally:
        context.close()
        srv.stop()


def test_kill_asks_first_and_the_fleet_brings_the_instance_back(watched, server, sm):
    page, errors, _ = watched
    deploy(sm, "victim")
    button = page.locator('article[data-endpoint="victim"] button[aria-label^="Kill "]')
    button.focus()  # a keyboard user's focus outlives the page's redraws (two a second)
    polls = page.evaluate("document.getElementById('status').textContent")
    shown(page, f"document.getElementById('status').textContent !== {json.dumps(polls)}")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')").startswith("Kill ")
    button.click()
    page.get_by_role("button", name="Cancel").click()  # asked, and told no: nothing happens
    assert server.endpoint_view("victim")["variants"][0]["instances"][0]["restarts"] == 0
    button.click()
    page.get_by_role("button", name="Confirm").click()
    eventually(lambda: server.endpoint_view("victim")["variants"][0]["instances"][0]["restarts"] == 1, timeout=30)
    assert errors == []


def test_a_page_from_another_origin_cannot_use_the_actions(browser, server, sm):
    deploy(sm, "kept")
    attacker = f"""<!doctype html><script>
      fetch("{server.url}/_emu/reset", {{method: "POST", mode: "no-cors"}});
    </script>"""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the standard library's name
            body = attacker.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    context = browser.new_context()
    page = context.new_page()
    try:
        with page.expect_response(lambda r: r.url == f"{server.url}/_emu/reset") as answer:
            page.goto(f"http://127.0.0.1:{other.server_address[1]}/")
        assert answer.value.status == 403
    finally:
        context.close()
        other.shutdown()
    assert sm.describe_endpoint(EndpointName="kept")["EndpointStatus"] == "InService"  # no reset happened


def test_the_page_works_under_sigv4_with_its_token(browser, tmp_path):
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = AKIDLIVEVIEW\naws_secret_access_key = secret\n")
    server = EmulatorProcess("--auth", "sigv4", "--credentials", str(credentials),
                             env={"SAGEMAKER_EMU_UI_TOKEN": "page-token"})
    context = browser.new_context()
    page = context.new_page()
    try:
        assert page.goto(server.url + "/_emu/ui").status == 403  # no token: signed calls only
        assert page.goto(server.url + "/_emu/ui?token=wrong").status == 403
        page.goto(server.url + "/_emu/ui?token=page-token")
        shown(page, "document.getElementById('status').textContent.startsWith('live')")
        status, _, body = server.post("/_emu/state", method="GET")  # the cookie is the page's, not ours
        assert status == 403
        state = json.loads(page.evaluate("fetch('/_emu/state').then((r) => r.text())"))
        assert state["endpoints"] == []
    finally:
        context.close()
        server.stop()
