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
              cell(m.devices.length ? `${m.backend} ${m.devices.join(",")}` : m.backend || "-"));
    const engines = cell("", "engines");
    for (const e of m.engines) {
      const s = document.createElement("span");
      s.textContent = `${e.name} pid ${e.pid ?? "-"} port ${e.port ?? "-"} ${e.state}`;
      engines.append(s);
    }
    tr.append(engines, cell(String(m.restarts)), cell(`${m.in_flight}${m.queued ? ` (+${m.queued} waiting)` : ""}`),
              cell(tokensPerS(m.name)));
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
connect();
