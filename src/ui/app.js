/* shoal dashboard: polls nothing; fetches nodes/services/tasks once per
 * server-sent "change" event and renders three views. No framework: each
 * view is one innerHTML, and the visualizer only rewrites the node columns
 * whose HTML changed (fast with 100 nodes and 3,000 tasks). */
"use strict";

const state = { token: "", snapshot: null, events: [], view: "visualizer", columns: new Map(),
                fetching: false, again: false, source: null };
const MAX_EVENTS = 300;

/* ---- helpers ---- */

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

/* A stable colour per service name: the same service looks the same everywhere. */
function serviceColour(name) {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return `hsl(${h % 360}, 55%, 42%)`;
}

function pct(v) { return Math.max(0, Math.min(100, Number(v) || 0)); }
function bytes(n) {
  const u = ["B", "kB", "MB", "GB", "TB"]; let i = 0; n = Number(n) || 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(n < 10 && i ? 1 : 0)}${u[i]}`;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path) {
  const resp = await fetch(path, { headers: { Authorization: `Bearer ${state.token}` },
                                   cache: "no-store" });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new ApiError(resp.status, body.message || resp.statusText);
  return body;
}

function banner(text) {
  const b = $("banner");
  b.textContent = text;
  b.hidden = !text;
  document.querySelector("main").hidden = !!text;
}

/* ---- data ---- */

/* /v1/nodes/stats is optional (older daemons): a map node id -> latest sample. */
function statsByNode(stats) {
  const out = new Map();
  const list = Array.isArray(stats) ? stats : stats && typeof stats === "object"
    ? Object.entries(stats).map(([id, v]) => Object.assign({ node_id: id }, v)) : [];
  for (const s of list) {
    const id = s.node_id || s.id;
    if (id) out.set(id, s.latest || s.sample || s);
  }
  return out;
}

async function fetchSnapshot() {
  const [nodes, services, tasks, stats] = await Promise.all([
    api("/v1/nodes"), api("/v1/services"), api("/v1/tasks"),
    api("/v1/nodes/stats").catch(() => null)]);
  return { nodes, services, tasks, stats: statsByNode(stats), at: Date.now() };
}

/* One fetch at a time; changes arriving meanwhile make one more. */
async function refresh() {
  if (state.fetching) { state.again = true; return; }
  state.fetching = true;
  try {
    const snap = await fetchSnapshot();
    if (state.snapshot) deriveEvents(state.snapshot, snap);
    state.snapshot = snap;
    banner("");
    render();
  } catch (e) {
    showError(e);
  } finally {
    state.fetching = false;
    if (state.again) { state.again = false; refresh(); }
  }
}

function showError(e) {
  if (e.status === 401) banner("Access denied: this link's token is missing or wrong. " +
                               "Ask for a new one: shoal dashboard url");
  else if (e.status === 503) banner(e.message);
  else console.warn("dashboard:", e);
}

/* ---- events: the differences between two snapshots ---- */

function deriveEvents(before, after) {
  const out = [];
  const add = (kind, text) => out.push({ at: after.at, kind, text });
  const oldNodes = new Map(before.nodes.map((n) => [n.id, n]));
  for (const n of after.nodes) {
    const o = oldNodes.get(n.id);
    if (!o) add("ok", `node ${n.hostname} joined`);
    else if (o.status !== n.status && n.status === "down") add("bad", `node ${n.hostname} down`);
    else if (o.status !== n.status && n.status === "ready") add("ok", `node ${n.hostname} up`);
  }
  const oldSvcs = new Map(before.services.map((s) => [s.id, s]));
  const newSvcs = new Set(after.services.map((s) => s.id));
  for (const s of after.services) if (!oldSvcs.has(s.id)) add("ok", `service ${s.name} created`);
  for (const s of before.services) if (!newSvcs.has(s.id)) add("warn", `service ${s.name} removed`);
  const oldTasks = new Map(before.tasks.map((t) => [t.id, t]));
  const hosts = new Map(after.nodes.map((n) => [n.id, n.hostname]));
  for (const t of after.tasks) {
    const o = oldTasks.get(t.id);
    if ((o ? o.state : "") === t.state) continue;
    const where = hosts.get(t.node_id) ? ` on ${hosts.get(t.node_id)}` : "";
    if (t.state === "running") add("ok", `task ${t.name} started${where}`);
    else if (t.state === "failed" || t.state === "rejected")
      add("bad", `task ${t.name} ${t.state}${where}${t.error ? ": " + t.error : ""}`);
  }
  state.events = out.reverse().concat(state.events).slice(0, MAX_EVENTS);
}

/* ---- views ---- */

function render() {
  const s = state.snapshot;
  if (!s) return;
  const running = s.tasks.filter((t) => t.state === "running").length;
  $("summary").textContent = `${s.nodes.length} nodes · ${s.services.length} services · ` +
                             `${running} running tasks`;
  if (state.view === "visualizer") renderVisualizer(s);
  else if (state.view === "services") renderServices(s);
  else renderEvents();
}

/* What a column shows: tasks meant to run, and those still running. */
function visibleTask(t) { return t.desired_state === "running" || t.state === "running"; }

function bar(label, percent, text) {
  return `<div class="bar-label"><span>${label}</span><span>${esc(text)}</span></div>` +
         `<div class="bar"><i style="width:${pct(percent)}%"></i></div>`;
}

function nodeBars(st) {
  if (!st) return "";
  let html = "";
  if (st.cpu_percent != null) html += bar("cpu", st.cpu_percent, `${Math.round(st.cpu_percent)}%`);
  const total = st.mem_total, used = st.mem_used;
  if (used != null && total) html += bar("mem", (100 * used) / total, `${bytes(used)}/${bytes(total)}`);
  else if (st.mem_percent != null) html += bar("mem", st.mem_percent, `${Math.round(st.mem_percent)}%`);
  if (st.temp_c != null) html += bar("temp", st.temp_c, `${Number(st.temp_c).toFixed(0)}°C`);
  return html;
}

function taskBox(t) {
  const cls = t.state === "running" ? "" : t.state === "failed" || t.state === "rejected"
    ? " not-running failed" : " not-running";
  return `<div class="task${cls}" data-task="${esc(t.id)}" data-service="${esc(t.service_name)}"` +
         ` data-state="${esc(t.state)}" style="background:${serviceColour(t.service_name || "")}"` +
         ` title="${esc(t.name)} ${esc(t.state)} ${esc(t.message)}"><b>${esc(t.name)}</b>` +
         `${esc(t.state)}</div>`;
}

function nodeColumn(n, tasks, st) {
  const leader = n.manager_status === "leader" ? ' <span class="leader" title="leader">★</span>' : "";
  return `<div class="node-head"><div class="node-name" title="${esc(n.addr)}">${esc(n.hostname)}` +
         `${leader}</div><div class="node-meta">${esc(n.role)} · <span class="st-${esc(n.status)}">` +
         `${esc(n.status)}</span> · ${esc(n.availability)}</div>${nodeBars(st)}</div>` +
         `<div class="tasks">${tasks.length ? tasks.map(taskBox).join("")
                                            : '<div class="empty">no tasks</div>'}</div>`;
}

/* Rewrites only the columns whose HTML changed; rebuilds when nodes come or go. */
function renderVisualizer(s) {
  const byNode = new Map(s.nodes.map((n) => [n.id, []]));
  for (const t of s.tasks) if (visibleTask(t) && byNode.has(t.node_id)) byNode.get(t.node_id).push(t);
  const root = $("visualizer");
  const ids = s.nodes.map((n) => n.id).join(",");
  if (root.dataset.nodes !== ids) {
    root.innerHTML = s.nodes.map((n) => `<div class="node" data-node="${esc(n.id)}"></div>`).join("");
    root.dataset.nodes = ids;
    state.columns.clear();
  }
  const cols = root.children;
  s.nodes.forEach((n, i) => {
    const html = nodeColumn(n, byNode.get(n.id), s.stats.get(n.id));
    if (state.columns.get(n.id) === html) return;
    state.columns.set(n.id, html);
    cols[i].innerHTML = html;
    cols[i].className = `node${n.status === "down" ? " down" : ""}`;
    cols[i].dataset.hostname = n.hostname;
  });
}

function renderServices(s) {
  const tasksBySvc = new Map();
  for (const t of s.tasks) {
    if (!visibleTask(t)) continue;
    if (!tasksBySvc.has(t.service_id)) tasksBySvc.set(t.service_id, []);
    tasksBySvc.get(t.service_id).push(t);
  }
  const hosts = new Map(s.nodes.map((n) => [n.id, n.hostname]));
  const rows = s.services.map((svc) => {
    const spec = svc.spec || {};
    const ok = svc.replicas_running >= svc.replicas_desired;
    const tasks = (tasksBySvc.get(svc.id) || []).map((t) =>
      `<span class="chip" title="${esc(t.state)}">${esc(t.name)} @ ${esc(hosts.get(t.node_id) || "?")}` +
      ` <span class="${t.state === "running" ? "ok" : "warn"}">${esc(t.state)}</span></span>`).join("");
    return `<tr data-service="${esc(svc.name)}"><td><span class="swatch" style="background:` +
           `${serviceColour(svc.name)}"></span>${esc(svc.name)}</td>` +
           `<td>${esc(spec.mode || "replicated")}</td>` +
           `<td class="replicas ${ok ? "ok" : "warn"}">${svc.replicas_running}/${svc.replicas_desired}</td>` +
           `<td>${esc(spec.image)}</td><td>${esc(svc.update_status || "")}</td><td>${tasks}</td></tr>`;
  }).join("");
  $("services").innerHTML = `<table><thead><tr><th>Name</th><th>Mode</th><th>Replicas</th>` +
    `<th>Image</th><th>Update</th><th>Tasks</th></tr></thead><tbody>${rows ||
    '<tr><td colspan="6" class="empty">no services</td></tr>'}</tbody></table>`;
}

function renderEvents() {
  const items = state.events.map((e) =>
    `<li class="event"><time>${new Date(e.at).toLocaleTimeString()}</time>` +
    `<span class="${e.kind}">${esc(e.text)}</span></li>`).join("");
  $("events").innerHTML = `<ol>${items || '<li class="empty">no events since the page opened</li>'}</ol>`;
}

/* ---- live updates ---- */

function setLive(on) {
  const el = $("live");
  el.className = `live ${on ? "on" : "off"}`;
  el.textContent = on ? "live" : "offline";
}

function connectEvents() {
  const es = new EventSource(`/v1/events?token=${encodeURIComponent(state.token)}`);
  state.source = es;
  es.addEventListener("change", () => { setLive(true); refresh(); });
  es.onopen = () => setLive(true);
  es.onerror = () => setLive(false); /* EventSource reconnects by itself */
}

/* ---- start ---- */

function readToken() {
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) sessionStorage.setItem("shoal-token", decodeURIComponent(m[1]));
  return sessionStorage.getItem("shoal-token") || "";
}

function selectView(view) {
  state.view = view;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === view);
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== view;
  render();
}

async function start() {
  for (const b of document.querySelectorAll("#tabs button")) b.onclick = () => selectView(b.dataset.view);
  state.token = readToken();
  try {
    const info = await api("/v1/info");
    if (!info.swarm || !info.swarm.is_manager) {
      banner(`${info.hostname} is not a manager: workers serve no cluster data. ` +
             "Open the dashboard of a manager node.");
      return;
    }
  } catch (e) {
    showError(e);
    return;
  }
  await refresh();
  connectEvents();
}

start();
