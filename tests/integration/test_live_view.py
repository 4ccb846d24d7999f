"""The live view at /_emu/ui, driven in headless Chromium (Debian's, through Playwright): it loads
with no console error and no request leaving 127.0.0.1, its in-flight bars move under load and
its served counts match /_emu/endpoints/<name>, a scale-out shows up within 2 s of
DescribeEndpoint showing it, a page from another origin cannot use its actions, and it works
under --auth sigv4 with its token."""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
from pathlib import Path

import pytest

from sagemaker_emu.testing import EmulatorProcess, deploy
from tests.integration.installs import wait_for_install
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
