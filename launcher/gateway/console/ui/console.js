// The launcher console: one SSE stream (/api/events) read with fetch, so the API key travels in a header
// (EventSource cannot send one) and never in a URL. The key lives in sessionStorage.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "launcher-key";
const state = { models: [], requests: [], logs: [], sources: new Set(), chat: [] };

function headers(extra = {}) {
  const key = sessionStorage.getItem(KEY);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

function askForKey(message) {
  $("key-form").hidden = false;
  if (message) notice(message);
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

async function api(method, path, body) {
  const resp = await fetch(path, { method, headers: headers({ "Content-Type": "application/json" }),
                                   body: body === undefined ? undefined : JSON.stringify(body) });
  if (resp.status === 401) askForKey("The key was refused (the management API needs the admin key).");
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = data.error;
    throw new Error(typeof err === "string" ? err : (err && err.message) || data.message || resp.statusText);
  }
  return data;
}

// --- server-sent events over fetch -----------------------------------------------------------------
async function* sseEvents(resp) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

async function connect() {
  for (;;) {
    try {
      const resp = await fetch("/api/events", { headers: headers() });
      if (resp.status === 401) {
        $("link").textContent = "needs a key";
        askForKey();
        return;  // the key form reconnects
      }
      $("link").textContent = "live";
      $("key-form").hidden = true;
      for await (const { event, data } of sseEvents(resp)) on(event, JSON.parse(data));
    } catch (err) {
      $("link").textContent = "reconnecting…";
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function on(event, data) {
  if (event === "snapshot") {
    state.requests = data.requests.slice().reverse();
    renderModels(data.models);
    renderActivity();
    renderDevices(data.devices);
  } else if (event === "models") {
    renderModels(data);
  } else if (event === "request") {
    state.requests.unshift(data);
    state.requests.length = Math.min(state.requests.length, 100);
    renderActivity();
  } else if (event === "log") {
    addLog(data);
  } else if (event === "config") {
    notice(data.ok ? `Config reloaded: ${data.summary}` : `Config not reloaded: ${data.problems.join("; ")}`);
  }
}

// --- models ----------------------------------------------------------------------------------------
function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function button(label, action, model) {
  const b = document.createElement("button");
  b.textContent = label;
  b.dataset.action = action;
  b.dataset.model = model;
  b.addEventListener("click", () => act(action, model));
  return b;
}

function deviceBytes(bytes) {   // the placement's bytes per device, from the memory plan
  const parts = Object.entries(bytes || {}).map(([d, b]) => `${d.split(":")[1]}: ${(b / 2 ** 30).toFixed(1)} GiB`);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

function tokensPerS(model) {
  const last = state.requests.find((r) => r.model === model && r.tokens_per_s);
  return last ? String(last.tokens_per_s) : "-";
}

function renderModels(models) {
  state.models = models;
  const rows = $("model-rows");
  rows.replaceChildren();
  for (const m of models) {
    const tr = document.createElement("tr");
    tr.dataset.model = m.name;
    tr.append(cell(m.kind === "worker" ? `${m.name} (worker)` : m.name),
              cell(m.state, `state state-${m.state}`), cell(m.mode),
              cell(m.devices.length ? `${m.backend} ${m.devices.join(",")}${deviceBytes(m.device_bytes)}`
                                    : m.backend || "-"));
    const engines = cell("", "engines");
    for (const e of m.engines) {
      const s = document.createElement("span");
      s.textContent = `${e.name} pid ${e.pid ?? "-"} port ${e.port ?? "-"} ${e.state}`;
      engines.append(s);
    }
    tr.append(engines, cell(String(m.restarts)), cell(`${m.in_flight}${m.queued ? ` (+${m.queued} waiting)` : ""}`),
              cell(tokensPerS(m.name)), trendCell(m.trend));
    const actions = cell("");
    if (m.kind === "model") {
      if (["ready", "starting", "restarting"].includes(m.state)) actions.append(button("Stop", "stop", m.name));
      else actions.append(button("Load", "load", m.name));
      actions.append(button("Switch…", "switch", m.name));
    }
    tr.append(actions);
    rows.append(tr);
    if (m.last_error && m.state === "failed") tr.title = m.last_error;
  }
  const select = $("pg-model");
  const chosen = select.value;
  select.replaceChildren(...models.filter((m) => m.kind === "model").map((m) => new Option(m.name, m.name)));
  if (chosen) select.value = chosen;
  for (const m of models) addSource(m.name);
}

async function act(action, model) {
  notice("");
  try {
    if (action === "stop") await api("POST", "/api/v1/model/stop", { model_name: model });
    else if (action === "load") await api("POST", "/api/v1/model/load", { model_name: model });
    else if (action === "switch") return openSwitch();
  } catch (err) {
    notice(`${action} ${model}: ${err.message}`);
  }
}

async function openSwitch() {
  try {
    const files = (await api("GET", "/api/v1/models")).data;
    $("switch-file").replaceChildren(...files.map((f) => new Option(f.model_name || f.model_path, f.model_path)));
    $("switch-box").hidden = false;
  } catch (err) {
    notice(`switch: ${err.message}`);
  }
}

$("switch-go").addEventListener("click", async () => {
  $("switch-box").hidden = true;
  try {
    await api("POST", "/api/v1/model/switch", { model_path: $("switch-file").value });
  } catch (err) {
    notice(`switch: ${err.message}`);
  }
});
$("switch-cancel").addEventListener("click", () => { $("switch-box").hidden = true; });

// --- pictures: sparklines and the usage charts, drawn as SVG in the page ----------------------------
const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#2f6fdb", "#d9822b", "#1a7f37", "#b23bb2", "#c62828", "#0f8a8a", "#7a5c00", "#5a5fd6"];

function svgEl(name, attrs = {}, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function sparkline(values, cls, width = 120, height = 16) {
  const svg = svgEl("svg", { class: `spark ${cls}`, width, height, viewBox: `0 0 ${width} ${height}` });
  if (values.length < 2) return svg;
  const top = Math.max(...values, 1);
  const step = width / (values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 1 - (v / top) * (height - 2)).toFixed(1)}`);
  svg.append(svgEl("polyline", { class: cls, points: points.join(" ") }));
  return svg;
}

function trendCell(trend) {
  const td = cell("", "trend");
  const tokens = (trend && trend.tokens_per_s) || [];
  const queued = (trend && trend.queued) || [];
  td.append(sparkline(tokens, "tokens"), sparkline(queued, "queued"));
  const now = (list) => (list.length ? list[list.length - 1] : 0);
  td.title = `tokens/s: now ${now(tokens)}, top ${Math.max(0, ...tokens)}; ` +
             `waiting: now ${now(queued)}, top ${Math.max(0, ...queued)}`;
  return td;
}

// A stacked bar per hour: each series (a key, or a model) one colour, tokens = prompt + completion.
function stackedChart(svg, legend, rows, seriesOf, since) {
  const W = 640, H = 220, left = 48, bottom = 22, top = 8;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const hour = 3600 * 1000;
  const first = Math.floor(since * 1000 / hour) * hour, last = Math.floor(Date.now() / hour) * hour;
  const hours = [];
  for (let t = first; t <= last; t += hour) hours.push(t);
  const series = [...new Set(rows.map(seriesOf))].sort();
  const totals = new Map();  // hour -> series -> tokens
  for (const r of rows) {
    const t = Date.parse(r.hour);
    const at = totals.get(t) || new Map();
    at.set(seriesOf(r), (at.get(seriesOf(r)) || 0) + r.prompt_tokens + r.completion_tokens);
    totals.set(t, at);
  }
  const peak = Math.max(1, ...[...totals.values()].map((m) => [...m.values()].reduce((a, b) => a + b, 0)));
  const plotH = H - bottom - top, slot = (W - left) / hours.length;
  svg.append(svgEl("line", { class: "axis", x1: left, y1: H - bottom, x2: W, y2: H - bottom }),
             svgEl("text", { x: left - 4, y: top + 8, "text-anchor": "end" }, peak.toLocaleString()),
             svgEl("text", { x: left - 4, y: H - bottom, "text-anchor": "end" }, "0"));
  const every = Math.ceil(hours.length / 8);
  hours.forEach((t, i) => {
    const x = left + i * slot;
    if (i % every === 0) {
      const label = new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      const anchor = x + slot / 2 > W - 24 ? "end" : "middle";   // the last label stays inside
      svg.append(svgEl("text", { x: anchor === "end" ? W : x + slot / 2, y: H - 6, "text-anchor": anchor }, label));
    }
    let y = H - bottom;
    const at = totals.get(t) || new Map();
    series.forEach((name, k) => {
      const value = at.get(name) || 0;
      if (!value) return;
      const h = Math.max(1, (value / peak) * plotH);
      y -= h;
      const bar = svgEl("rect", { class: "bar", "data-series": name, x: x + 1, y, width: Math.max(1, slot - 2),
                                  height: h, fill: PALETTE[k % PALETTE.length] });
      bar.append(svgEl("title", {}, `${name}, ${new Date(t).toLocaleString()}: ${value.toLocaleString()} tokens`));
      svg.append(bar);
    });
  });
  legend.replaceChildren(...series.map((name, k) => {
    const span = document.createElement("span");
    span.dataset.series = name;
    const swatch = document.createElement("i");
    swatch.style.background = PALETTE[k % PALETTE.length];
    span.append(swatch, name);
    return span;
  }));
}

async function refreshUsage() {
  const since = Date.now() / 1000 - Number($("usage-since").value);
  let rows;
  try {
    rows = (await api("GET", `/api/v1/usage?since=${since.toFixed(0)}`)).data;
  } catch (err) {
    $("usage-note").textContent = `Usage: ${err.message}`;
    return;
  }
  const sum = (list, f) => list.reduce((a, r) => a + r[f], 0);
  $("usage-note").textContent = rows.length
    ? `${sum(rows, "requests")} requests, ${(sum(rows, "prompt_tokens") + sum(rows, "completion_tokens")).toLocaleString()} tokens`
    : "No requests in this time.";
  stackedChart($("usage-by-key"), $("legend-by-key"), rows, (r) => r.key, since);
  stackedChart($("usage-by-model"), $("legend-by-model"), rows, (r) => r.model, since);
  const totals = new Map();
  for (const r of rows) {
    const k = `${r.key}\u0000${r.model}`;
    const t = totals.get(k) || { key: r.key, model: r.model, requests: 0, prompt_tokens: 0, completion_tokens: 0, errors: 0 };
    for (const f of ["requests", "prompt_tokens", "completion_tokens", "errors"]) t[f] += r[f];
    totals.set(k, t);
  }
  $("usage-rows").replaceChildren(...[...totals.values()].map((t) => {
    const tr = document.createElement("tr");
    tr.append(cell(t.key), cell(t.model), cell(String(t.requests)), cell(String(t.prompt_tokens)),
              cell(String(t.completion_tokens)), cell(String(t.errors)));
    return tr;
  }));
}
$("usage-since").addEventListener("change", refreshUsage);

// --- captured requests -----------------------------------------------------------------------------
async function refreshRequests() {
  let list;
  try {
    list = (await api("GET", "/api/v1/requests")).data;
  } catch (err) {
    $("requests-note").textContent = err.message;
    return;
  }
  $("requests-note").textContent = `${list.length} captured requests, newest first; secrets are redacted.`;
  const chosen = $("request-detail").dataset.id;
  $("request-rows").replaceChildren(...list.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.id = r.id;
    if (String(r.id) === chosen) tr.className = "chosen";
    tr.append(cell(String(r.id)), cell(new Date(r.at * 1000).toLocaleTimeString()), cell(r.key || "-"),
              cell(r.model || "-"), cell(`${r.method} ${r.path}`), cell(String(r.status ?? "-")),
              cell(String(r.duration_ms ?? "-")), cell(String(r.bytes)));
    tr.addEventListener("click", () => openRequest(r.id));
    return tr;
  }));
}

async function openRequest(id) {
  const pre = $("request-detail");
  try {
    const whole = (await api("GET", `/api/v1/requests/${id}`)).data;
    pre.dataset.id = String(id);
    pre.className = "";
    pre.textContent = JSON.stringify(whole, null, 2);
    for (const tr of $("request-rows").children) tr.classList.toggle("chosen", tr.dataset.id === String(id));
  } catch (err) {
    pre.textContent = err.message;
  }
}

// --- activity, logs, devices -----------------------------------------------------------------------
function renderActivity() {
  const rows = $("activity-rows");
  rows.replaceChildren(...state.requests.slice(0, 50).map((r) => {
    const tr = document.createElement("tr");
    tr.append(cell(new Date(r.at * 1000).toLocaleTimeString()), cell(r.model), cell(r.protocol), cell(r.endpoint),
              cell(String(r.status)), cell(r.tokens_out ?? "-"), cell(r.ttft_ms ?? "-"), cell(r.tokens_per_s ?? "-"),
              cell(String(r.duration_ms)));
    return tr;
  }));
  for (const tr of $("model-rows").children) tr.children[7].textContent = tokensPerS(tr.dataset.model);
}

function addSource(name) {
  if (state.sources.has(name)) return;
  state.sources.add(name);
  $("log-source").append(new Option(name, name));
}

function addLog(line) {
  state.logs.push(line);
  if (state.logs.length > 2000) state.logs.shift();
  const wanted = $("log-source").value;
  if (!wanted || line.model === wanted) {
    const pre = $("log-lines");
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.append(`[${line.source}] ${line.text}\n`);
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }
}

async function loadLogHistory() {
  const source = $("log-source").value;
  const resp = await fetch(source ? `/logs?model=${encodeURIComponent(source)}` : "/logs", { headers: headers() });
  if (resp.ok) $("log-lines").textContent = await resp.text();
}
$("log-source").addEventListener("change", loadLogHistory);

function renderDevices(devices) {
  const rows = [];
  for (const [backend, chips] of Object.entries((devices && devices.devices) || {})) {
    for (const c of chips) {
      const tr = document.createElement("tr");
      const [used, total] = c.hbm_total ? [c.hbm_used, c.hbm_total] : [c.memory_used, c.memory_total];
      tr.append(cell(`${backend}:${c.id}`), cell(c.model_name), cell(c.healthy ? "OK" : "not OK"),
                cell(c.utilization ?? "-"), cell(c.temperature ?? "-"), cell(c.power ?? "-"),
                cell(`${used ?? "-"} / ${total ?? "-"}`));
      rows.push(tr);
    }
  }
  $("device-rows").replaceChildren(...rows);
  $("devices-table").hidden = rows.length === 0;
  $("devices-none").hidden = rows.length > 0;
}

async function refreshDevices() {
  const resp = await fetch("/api/devices", { headers: headers() }).catch(() => null);
  if (resp && resp.ok) renderDevices(await resp.json());
}

// --- playground ------------------------------------------------------------------------------------
$("pg-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = $("pg-input").value.trim();
  if (!text) return;
  $("pg-input").value = "";
  state.chat.push({ role: "user", content: text });
  const out = $("pg-output");
  const you = document.createElement("div");
  you.className = "user";
  you.textContent = `> ${text}`;
  const answer = document.createElement("div");
  answer.className = "assistant";
  out.append(you, answer);
  try {
    const resp = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ model: $("pg-model").value, messages: state.chat, stream: true, max_tokens: 256 }),
    });
    if (!resp.ok) throw new Error(((await resp.json()).error || {}).message || resp.statusText);
    for await (const { data } of sseEvents(resp)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) answer.textContent += delta.content;
    }
    state.chat.push({ role: "assistant", content: answer.textContent });
  } catch (err) {
    answer.textContent += ` [error: ${err.message}]`;
  }
});
$("pg-clear").addEventListener("click", () => { state.chat = []; $("pg-output").replaceChildren(); });

// --- tabs and start ----------------------------------------------------------------------------------
function show(panel) {
  for (const section of document.querySelectorAll(".panel")) section.hidden = section.id !== panel;
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.panel === panel);
  if (panel === "logs" && !$("log-lines").textContent) loadLogHistory();
  if (panel === "usage") refreshUsage();
  if (panel === "requests") refreshRequests();
}
window.addEventListener("hashchange", () => show(location.hash.slice(1) || "models"));
$("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(KEY, $("key-input").value);
  $("key-input").value = "";
  $("key-form").hidden = true;
  notice("");
  connect();
});
show(location.hash.slice(1) || "models");
setInterval(refreshDevices, 10000);
setInterval(() => { if (!$("usage").hidden) refreshUsage(); }, 10000);
setInterval(() => { if (!$("requests").hidden) refreshRequests(); }, 5000);
connect();
