// sagemaker-emu's live view: polls GET /_emu/state (same origin, nothing else) and draws it.
// Every name shown comes from a user's request, so text goes in through textContent, never HTML.
"use strict";

const POLL_MS = 500;
const HISTORY = 240; // capacity samples kept per scalable target (two minutes at 500 ms)
const history = new Map(); // scalable target -> [[time, capacity], ...], kept by the page
let paused = false;
let failures = 0;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function table(caption, headers, rows) {
  return el("table", {},
    el("caption", { text: caption }),
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, rows));
}

function badge(text, kind) {
  return el("span", { class: `badge ${kind || String(text).toLowerCase()}`, text });
}

// A small SVG line chart: series is [{label, points: [[x, y], ...]}]; x and y scale to fit.
function chart(title, series, unit) {
  const width = 320, height = 90, pad = 4;
  const all = series.flatMap((s) => s.points);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  const last = series.map((s) => `${s.label} ${s.points.length ? fmt(s.points[s.points.length - 1][1]) : "-"}${unit}`);
  svg.setAttribute("aria-label", `${title}: ${last.join(", ")}`);
  if (all.length) {
    const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), y1 = Math.max(...ys, 1e-9);
    const at = ([x, y]) => [pad + (x - x0) / (x1 - x0) * (width - 2 * pad), height - pad - y / y1 * (height - 2 * pad)];
    series.forEach((s, i) => {
      const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
      line.setAttribute("points", s.points.map((p) => at(p).join(",")).join(" "));
      line.setAttribute("class", `series s${i}`);
      svg.append(line);
      for (const p of s.points.slice(-30)) { // the latest points as dots: one point alone is seen too
        const dot = document.createElementNS("http://www.w3.org/2000/svg", "circle");
        const [cx, cy] = at(p);
        dot.setAttribute("cx", cx); dot.setAttribute("cy", cy); dot.setAttribute("r", 2.5);
        dot.setAttribute("class", `dot s${i}`);
        svg.append(dot);
      }
    });
  }
  return el("figure", { class: "chart" }, svg, el("figcaption", { text: `${title} (${last.join(", ")})` }));
}

function fmt(n) {
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

async function post(path, body, method = "POST") {
  const response = await fetch(path, {
    method, credentials: "same-origin",
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${response.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : {};
}

function confirmThen(question, action) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = question;
  dialog.returnValue = "";
  dialog.addEventListener("close", function once() {
    dialog.removeEventListener("close", once);
    if (dialog.returnValue === "ok") action();
  });
  dialog.showModal();
}

// ------------------------------------------------------------------ endpoints

function instanceRows(endpoint, instances, colors) {
  return instances.map((i) => {
    const most = Math.max(4, ...instances.map((x) => x.in_flight));
    return el("tr", { "data-instance-id": i.id, "data-served": i.served, "data-in-flight": i.in_flight },
      el("th", { scope: "row" }, el("span", { class: "swatch", style: `background:${colors.get(i.id)}` }), i.id),
      el("td", { text: i.instance_type || "-" }),
      el("td", { text: i.model || "-" }),
      el("td", {}, badge(i.health)),
      el("td", {}, el("div", {
        class: "bar", role: "meter", "aria-label": `${i.id} requests in flight`, "aria-valuemin": 0,
        "aria-valuemax": most, "aria-valuenow": i.in_flight,
      }, el("span", { style: `width:${100 * i.in_flight / most}%` }), el("b", { text: i.in_flight }))),
      el("td", { class: "num", text: i.served }),
      el("td", { class: "num", text: i.errors }),
      el("td", { class: "num", text: i.restarts }),
      el("td", { class: "num", text: i.pid ?? "-" }),
      el("td", { class: "num", text: i.host && i.host !== "127.0.0.1" ? `${i.host}:${i.port}` : i.port,
        title: i.node ? `Ray node ${i.node}` : null }),  // --fleet ray: where it runs
      cacheCell(i.kv_cache),
      el("td", {}, el("button", {
        type: "button", class: "danger small", "aria-label": `Kill ${i.id}`, disabled: !i.pid,
        onclick: () => confirmThen(`Kill instance ${i.id} (pid ${i.pid}) of ${endpoint}? The fleet restarts it.`,
          () => post(`/_emu/endpoints/${encodeURIComponent(endpoint)}/instances/${encodeURIComponent(i.id)}/kill`)
            .catch((e) => setStatus(`kill failed: ${e.message}`))),
      }, "Kill")));
  });
}

const HEADERS = ["instance", "type", "model", "health", "in flight", "served", "errors", "restarts", "pid", "port",
  "prefix cache", ""];

// The container's own count of prompt tokens found in its prefix cache, and the blocks it holds.
function cacheCell(kv) {
  if (!kv) return el("td", { text: "-" });
  const rate = kv.queried_tokens ? kv.hit_tokens / kv.queried_tokens : null;
  return el("td", { class: "cache", "data-hit-rate": rate ?? "" },
    rate === null ? "no prompts yet" : `${Math.round(100 * rate)}% hits`,
    el("span", { class: "meta", text: ` · ${kv.blocks}/${kv.capacity} blocks` }));
}

function palette(ids) {
  const colors = new Map();
  ids.forEach((id, n) => colors.set(id, `hsl(${(n * 137.5) % 360} 65% 50%)`));
  return colors;
}

function endpointCard(ep) {
  const ids = [...ep.variants.flatMap((v) => v.instances.map((i) => i.id)),
    ...Object.values(ep.inference_components).flatMap((c) => c.copies.map((i) => i.id))];
  const colors = palette(ids);
  const parts = [el("h3", {}, ep.name, " ", badge(ep.status), el("span", { class: "meta", text: ` ${ep.region} · ${ep.account}` }))];
  if (ep.failure_reason) parts.push(el("p", { class: "failure", text: ep.failure_reason }));
  if (ep.deployment) {
    parts.push(el("p", { class: "deployment", "data-share": ep.deployment.share }, "Deploying ",
      el("code", { text: ep.deployment.config }), ": the new fleet takes ",
      meter("the new fleet's share of the traffic", ep.deployment.share), " of the traffic"));
  }
  for (const v of ep.variants) {
    const pools = Object.entries(v.pools || {});
    parts.push(el("p", { class: "variant" }, el("strong", { text: v.name }),
      ` · weight ${v.weight} · `, el("code", { text: v.routing_strategy }),
      pools.length > 1 ? ` · pools ${pools.map(([t, n]) => `${t} ${n}`).join(", ")}`
        : ` · ${v.serverless ? "serverless" : v.instance_type}`,
      v.serverless ? el("span", { class: "cold-starts", "data-variant": v.name,
        text: ` · cold starts ${ep.cold_starts[v.name] || 0}` }) : null));
    if (v.instances.length) parts.push(table(`Instances of ${v.name}`, HEADERS, instanceRows(ep.name, v.instances, colors)));
    if (v.hosts.length) {
      parts.push(table(`Instances of ${v.name} holding inference-component copies`, ["instance", "type", "copies", "free accelerators"],
        v.hosts.map((h) => el("tr", {}, el("th", { scope: "row", text: h.id }), el("td", { text: h.instance_type }),
          el("td", { text: h.copies.join(", ") || "-" }), el("td", { class: "num", text: h.free.accelerators })))));
    }
  }
  for (const [name, c] of Object.entries(ep.inference_components)) {
    // a rolling update shows as copies of the old and the new model side by side
    const models = new Map();
    for (const copy of c.copies) models.set(copy.model, (models.get(copy.model) || 0) + 1);
    parts.push(el("p", { class: "variant", "data-component": name }, "inference component ", el("strong", { text: name }),
      ` on ${c.variant} `, badge(c.status || "-"),
      models.size ? ` · copies: ${[...models].map(([m, n]) => `${n} of ${m || "?"}`).join(", ")}` : null));
    if (c.copies.length) parts.push(table(`Copies of ${name}`, HEADERS, instanceRows(ep.name, c.copies, colors)));
  }
  parts.push(el("div", { class: "strip", role: "img", "aria-label": `Instances that took ${ep.name}'s last ${ep.recent.length} calls` },
    ep.recent.map((id) => el("span", { title: id, style: `background:${colors.get(id) || "gray"}` }))));
  const t = ep.traffic;
  parts.push(el("div", { class: "charts" },
    chart("Invocations per second", [{ label: "calls/s", points: t.per_second }], ""),
    chart("ModelLatency", [{ label: "p50", points: t.p50_ms }, { label: "p99", points: t.p99_ms }], " ms")));
  return el("article", { class: "card", "data-endpoint": ep.name }, parts);
}

// ------------------------------------------------------------------ routers and benchmarks

function meter(label, share) {
  const percent = Math.round(100 * share);
  return el("span", { class: "bar", role: "meter", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": 100,
    "aria-valuenow": percent }, el("span", { style: `width:${percent}%` }), el("b", { text: `${percent}%` }));
}

// Each router's calls per destination: its share of the router's calls, and why they went there.
function routerShares(routed) {
  const routers = new Map();
  for (const r of routed) {
    const destinations = routers.get(r.router) || new Map();
    const d = destinations.get(r.destination) || { calls: 0, reasons: [] };
    d.calls += r.calls;
    d.reasons.push(`${r.reason} ${r.calls}`);
    routers.set(r.router, destinations.set(r.destination, d));
  }
  return [...routers].map(([router, destinations]) => {
    const total = [...destinations.values()].reduce((sum, d) => sum + d.calls, 0);
    return table(`Calls ${router} sent to each destination, and why`, ["destination", "share", "calls", "reasons"],
      [...destinations].map(([name, d]) => el("tr", { "data-router": router, "data-destination": name, "data-calls": d.calls },
        el("td", { text: name.split("/").pop() }), el("td", {}, meter(`${router}'s share sent to ${name}`, d.calls / total)),
        el("td", { class: "num", text: d.calls }), el("td", { text: d.reasons.join(", ") }))));
  });
}

const METRICS = { time_to_first_token: "Time to first token", inter_token_latency: "Inter-token latency",
  request_latency: "Request latency" };
const STATS = ["avg", "p50", "p90", "p99"];

// A completed job's percentiles, as AIPerf exported them: a bar per statistic, per metric.
function percentiles(job) {
  const groups = Object.entries(METRICS).filter(([m]) => job.summary[m]);
  const width = 320, row = 16, height = groups.length * (STATS.length * row + 22);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  const said = groups.map(([m, title]) => `${title}: ${STATS.filter((s) => s in job.summary[m])
    .map((s) => `${s} ${fmt(job.summary[m][s])} ${job.summary[m].unit}`).join(", ")}`);
  svg.setAttribute("aria-label", `${job.name}: ${said.join("; ")}`);
  const text = (x, y, value, cls) => {
    const t = document.createElementNS("http://www.w3.org/2000/svg", "text");
    t.setAttribute("x", x); t.setAttribute("y", y); t.setAttribute("class", cls); t.textContent = value;
    return t;
  };
  let y = 0;
  for (const [metric, title] of groups) {
    const values = job.summary[metric];
    const top = Math.max(...STATS.map((s) => values[s] || 0), 1e-9);
    svg.append(text(0, y + 14, `${title} (${values.unit})`, "label"));
    y += 20;
    for (const stat of STATS.filter((s) => s in values)) {
      const bar = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      bar.setAttribute("x", 34); bar.setAttribute("y", y + 2); bar.setAttribute("height", row - 5);
      bar.setAttribute("width", Math.max(1, (width - 110) * values[stat] / top));
      bar.setAttribute("class", `series-bar s${stat === "p99" ? 1 : 0}`);
      svg.append(text(0, y + row - 4, stat, "label"), bar,
        text(38 + (width - 110) * values[stat] / top, y + row - 4, fmt(values[stat]), "label"));
      y += row;
    }
    y += 2;
  }
  svg.setAttribute("height", height);
  const throughput = job.summary.request_throughput;
  return el("figure", { class: "chart percentiles", "data-job": job.name, "data-summary": JSON.stringify(job.summary) },
    svg, el("figcaption", {
    text: `${job.name}, as AIPerf measured it${throughput ? ` (${fmt(throughput.avg)} ${throughput.unit})` : ""}` }));
}

// ------------------------------------------------------------------ the rest

function scalingCard(target, now) {
  const key = `${target.region}/${target.resource_id}/${target.dimension}`;
  const seen = history.get(key) || [];
  if (target.current !== null) seen.push([now, target.current]);
  history.set(key, seen.slice(-HISTORY));
  return el("article", { class: "card" },
    el("h3", {}, el("code", { text: target.resource_id }), el("span", { class: "meta", text: ` ${target.dimension}` })),
    el("p", { text: `capacity ${target.current ?? "-"} (min ${target.min}, max ${target.max})` }),
    chart("Capacity", [{ label: "capacity", points: history.get(key) }], ""),
    target.alarms.length ? el("ul", { class: "alarms" }, target.alarms.map((a) => el("li", {}, badge(a.state), " ", a.name))) : null,
    target.activities.length ? table("Latest scaling activities", ["status", "description", "cause"],
      target.activities.map((a) => el("tr", {}, el("td", {}, badge(a.status || "-")), el("td", { text: a.description }),
        el("td", { text: a.cause })))) : null);
}

function render(state) {
  // Every poll draws the lists anew: keep the keyboard where it was (a button is known by its label).
  const focused = document.activeElement && document.activeElement.getAttribute("aria-label");
  draw(state);
  if (focused) document.querySelector(`[aria-label="${CSS.escape(focused)}"]`)?.focus();
}

function draw(state) {
  replace("endpoint-list", "no-endpoints", state.endpoints.map(endpointCard));
  replace("scaling-list", "no-scaling", state.scaling.map((t) => scalingCard(t, state.time)));
  replace("router-list", "no-routers", state.routers.length ? [table("Routers", ["router", "status", "targets"],
    state.routers.map((r) => el("tr", {}, el("td", { text: r.name }), el("td", {}, badge(r.status)),
      el("td", { text: r.targets.map((t) => `${t.name}: ${t.destinations.length} destinations`).join("; ") })))),
  ...routerShares(state.routed)] : []);
  replace("benchmark-list", "no-benchmarks", state.benchmarks.length ? [table("Jobs", ["job", "status", "endpoint", "reason"],
    state.benchmarks.map((j) => el("tr", {}, el("td", { text: j.name }), el("td", {}, badge(j.status)),
      el("td", { text: j.endpoint }), el("td", { text: j.failure_reason || "" })))),
  ...state.benchmarks.filter((j) => j.summary).map(percentiles)] : []);
  const capacity = Object.entries(state.capacity || {});
  replace("capacity-list", null, capacity.length ? [table("Instances by type", ["type", "in use", "limit"],
    capacity.map(([t, c]) => el("tr", {}, el("td", { text: t }), el("td", { class: "num", text: c.in_use }),
      el("td", { class: "num", text: c.limit ?? "unlimited" }))))] : [el("p", { class: "empty", text: "No instance running." })]);
}

function replace(listId, emptyId, nodes) {
  document.getElementById(listId).replaceChildren(...nodes);
  if (emptyId) document.getElementById(emptyId).hidden = nodes.length > 0;
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

async function poll() {
  if (!paused) {
    try {
      const response = await fetch("/_emu/state", { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      render(await response.json());
      failures = 0;
      setStatus(`live · updated ${new Date().toLocaleTimeString()}`);
    } catch (e) {
      failures += 1;
      setStatus(`the server does not answer (${e.message}); retrying`);
    }
  }
  setTimeout(poll, failures ? Math.min(5000, POLL_MS * 2 ** failures) : POLL_MS);
}

async function refreshFaults() {
  const list = await post("/_emu/faults", undefined, "GET");
  document.getElementById("fault-list").replaceChildren(list.faults.length ? table("Fault rules",
    ["id", "kind", "endpoint", "probability", ""], list.faults.map((f) => el("tr", {},
      el("td", { text: f.id }), el("td", { text: f.kind }), el("td", { text: f.endpoint }),
      el("td", { class: "num", text: f.probability }),
      el("td", {}, el("button", { type: "button", class: "small", "aria-label": `Remove fault ${f.id}`,
        onclick: () => post(`/_emu/faults/${encodeURIComponent(f.id)}`, undefined, "DELETE").then(refreshFaults) }, "Remove")))))
    : el("p", { class: "empty", text: "No fault rules." }));
}

function setTheme(dark) {
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  const button = document.getElementById("theme");
  button.setAttribute("aria-pressed", String(dark));
  try { localStorage.setItem("sagemaker-emu-theme", dark ? "dark" : "light"); } catch (e) { /* private mode */ }
}

document.addEventListener("DOMContentLoaded", () => {
  let stored = null;
  try { stored = localStorage.getItem("sagemaker-emu-theme"); } catch (e) { /* private mode */ }
  setTheme(stored ? stored === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches);
  document.getElementById("theme").addEventListener("click", () =>
    setTheme(document.documentElement.dataset.theme !== "dark"));
  document.getElementById("pause").addEventListener("click", (event) => {
    paused = !paused;
    event.target.setAttribute("aria-pressed", String(paused));
    event.target.textContent = paused ? "Resume" : "Pause";
  });
  document.getElementById("reset").addEventListener("click", () => confirmThen(
    "Reset the emulator? Every endpoint, model and neighbour resource is deleted and every worker stopped.",
    () => post("/_emu/reset").then(refreshFaults).catch((e) => setStatus(`reset failed: ${e.message}`))));
  document.getElementById("fault-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const rule = { kind: form.get("kind"), endpoint: form.get("endpoint"), probability: Number(form.get("probability")) };
    if (["latency", "slow_instance"].includes(rule.kind)) rule.latency_ms = Number(form.get("latency_ms"));
    const message = document.getElementById("fault-message");
    post("/_emu/faults", rule).then((f) => { message.textContent = `Added fault ${f.id}.`; refreshFaults(); })
      .catch((e) => { message.textContent = `Not added: ${e.message}`; });
  });
  document.getElementById("faults-clear").addEventListener("click", () =>
    post("/_emu/faults", undefined, "DELETE").then(refreshFaults));
  refreshFaults().catch(() => {});
  poll();
});
