/* shoal dashboard: fetches nodes/services/tasks once per server-sent "change"
 * event, and every 10 s (node stats change without store changes), and renders
 * four views. No framework: each view is one innerHTML (sparklines are SVG path
 * strings), and the visualizer only rewrites the node columns whose HTML
 * changed (fast with 100 nodes and 3,000 tasks). */
"use strict";

const state = { token: "", snapshot: null, events: [], view: "visualizer", columns: new Map(),
                fetching: false, again: false, source: null, stats: null, statsAt: 0,
                nodesHtml: "" };
const MAX_EVENTS = 300;
const TICK_MS = 10000;       /* stats refresh without store changes */
const STATS_MAX_AGE = 5000;  /* outside the Nodes tab, change events reuse stats this fresh */
const HOUR_MS = 3600000;

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

/* /v1/nodes/stats is optional (older daemons): node id -> {latest, history, tasks}. */
function statsByNode(stats) {
  const out = new Map();
  const list = Array.isArray(stats) ? stats : stats && typeof stats === "object"
    ? Object.entries(stats).map(([id, v]) => Object.assign({ node_id: id }, v)) : [];
  for (const s of list) {
    const id = s.node_id || s.id;
    if (!id) continue;
    const latest = s.latest !== undefined ? s.latest : s.sample || s;
    out.set(id, { latest: latest || null, history: Array.isArray(s.history) ? s.history : [],
                  tasks: Array.isArray(s.tasks) ? s.tasks : (latest && latest.tasks) || [] });
  }
  return out;
}

/* Stats are big (an hour of history per node): a change event re-fetches them
 * only on the Nodes tab, when forced (the 10 s tick) or when they are stale. */
async function fetchStats(force) {
  if (!force && state.stats && state.view !== "nodes" && Date.now() - state.statsAt < STATS_MAX_AGE)
    return state.stats;
  const at = Date.now();
  const stats = statsByNode(await api("/v1/nodes/stats").catch(() => null));
  state.stats = stats;
  state.statsAt = at;
  return stats;
}

/* One fetch at a time; changes arriving meanwhile make one more. The views are
 * drawn as soon as nodes, services and tasks are in, then again with the stats
 * (the biggest answer) when they differ from the ones already shown. */
async function refresh(force) {
  if (state.fetching) { state.again = true; state.againForce = state.againForce || !!force; return; }
  state.fetching = true;
  try {
    const stats = fetchStats(force);
    stats.catch(() => {});
    const [nodes, services, tasks] = await Promise.all([
      api("/v1/nodes"), api("/v1/services"), api("/v1/tasks")]);
    const snap = { nodes, services, tasks, stats: state.stats || new Map(), at: Date.now() };
    if (state.snapshot) deriveEvents(state.snapshot, snap);
    state.snapshot = snap;
    banner("");
    render();
    const fresh = await stats;
    if (fresh !== snap.stats && state.snapshot === snap) {
      snap.stats = fresh;
      render();
    }
  } catch (e) {
    showError(e);
  } finally {
    state.fetching = false;
    if (state.again) {
      const f = state.againForce;
      state.again = state.againForce = false;
      refresh(f);
    }
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
  else if (state.view === "nodes") renderNodes(s);
  else if (state.view === "gantt") renderGantt(); /* jobs.js */
  else if (state.view === "resources") renderResources();
  else if (state.view === "alerts") renderAlerts(); /* alerts.js */
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
         ` title="${esc(t.name)} ${esc(t.state)} ${esc(t.error || t.message)}"><b>${esc(t.name)}</b>` +
         `${esc(t.state)}</div>`;
}

function nodeHead(n, st) {
  const leader = n.manager_status === "leader" ? ' <span class="leader" title="leader">★</span>' : "";
  const hot = n.hot ? ' <span class="hot" title="too hot: no new tasks until it cools">hot</span>' : "";
  return `<div class="node-name" title="${esc(n.addr)}">${esc(n.hostname)}` +
         `${leader}${hot}</div><div class="node-meta">${esc(n.role)} · <span class="st-${esc(n.status)}">` +
         `${esc(n.status)}</span> · ${esc(n.availability)}</div>${nodeBars(st)}`;
}

function nodeTasks(tasks) {
  return tasks.length ? tasks.map(taskBox).join("") : '<div class="empty">no tasks</div>';
}

/* Each column is a head (name, status, bars: changes with the stats) and a task
 * list (changes with the store), cached apart as HTML strings: a 10 s stats tick
 * rewrites only heads. When nodes come or go, the whole view is one innerHTML. */
function renderVisualizer(s) {
  const byNode = new Map(s.nodes.map((n) => [n.id, []]));
  for (const t of s.tasks) if (visibleTask(t) && byNode.has(t.node_id)) byNode.get(t.node_id).push(t);
  const root = $("visualizer");
  const ids = s.nodes.map((n) => n.id).join(",");
  const parts = s.nodes.map((n) => {
    const st = s.stats.get(n.id);
    return { n, head: nodeHead(n, st && st.latest), tasks: nodeTasks(byNode.get(n.id)),
             cls: `node${n.status === "down" ? " down" : ""}${n.hot ? " hot" : ""}` };
  });
  if (root.dataset.nodes !== ids) {
    state.columns.clear();
    root.innerHTML = parts.map((p) => {
      state.columns.set(p.n.id, p);
      return `<div class="${p.cls}" data-node="${esc(p.n.id)}" data-hostname="${esc(p.n.hostname)}">` +
             `<div class="node-head">${p.head}</div><div class="tasks">${p.tasks}</div></div>`;
    }).join("");
    root.dataset.nodes = ids;
    return;
  }
  const cols = root.children;
  parts.forEach((p, i) => {
    const old = state.columns.get(p.n.id), col = cols[i];
    if (old.head !== p.head) col.firstElementChild.innerHTML = p.head;
    if (old.tasks !== p.tasks) col.lastElementChild.innerHTML = p.tasks;
    if (old.cls !== p.cls) col.className = p.cls;
    if (col.dataset.hostname !== p.n.hostname) col.dataset.hostname = p.n.hostname;
    state.columns.set(p.n.id, p);
  });
}

/* Published ports as `service ls` shows them: "*:8080->80/tcp". */
function ports(spec) {
  return (spec.ports || []).map((p) =>
    `*:${p.published}->${p.target}/${p.protocol}${p.mode === "host" ? " (host)" : ""}`).join(", ");
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
      ` <span class="${t.state === "running" && t.health !== "unhealthy" ? "ok" : "warn"}">` +
      `${esc(t.state)}${t.health ? ` (${esc(t.health)})` : ""}</span></span>`).join("");
    return `<tr data-service="${esc(svc.name)}"><td><span class="swatch" style="background:` +
           `${serviceColour(svc.name)}"></span>${esc(svc.name)}</td>` +
           `<td>${esc(spec.mode || "replicated")}</td>` +
           `<td class="replicas ${ok ? "ok" : "warn"}">${svc.replicas_running}/${svc.replicas_desired}</td>` +
           `<td>${esc(spec.image)}</td><td class="ports">${esc(ports(spec))}</td>` +
           `<td>${esc(svc.update_status || "")}</td><td>${tasks}</td></tr>`;
  }).join("");
  $("services").innerHTML = `<table><thead><tr><th>Name</th><th>Mode</th><th>Replicas</th>` +
    `<th>Image</th><th>Ports</th><th>Update</th><th>Tasks</th></tr></thead><tbody>${rows ||
    '<tr><td colspan="7" class="empty">no services</td></tr>'}</tbody></table>`;
}

/* ---- nodes: figures and sparklines of the last hour ---- */

const SPARK_W = 96, SPARK_H = 22;
const DASH = "—";

/* An SVG sparkline of pts ([at, value], oldest first) over the hour before `now`,
 * as one path string: one point per pixel column (the highest), and gaps over
 * 30 s (or null values) break the line. max: the top of the scale (at least the
 * highest value). */
function sparkline(pts, now, max, cls) {
  let top = max || 0;
  for (const p of pts) if (p[1] != null && p[1] > top) top = p[1];
  if (!(top > 0)) top = 1;
  const from = now - HOUR_MS;
  let d = "", prev = -Infinity, lone = false, col = -1, peak = 0, move = false;
  const flush = () => {
    if (col < 0) return;
    if (move && lone) d += "h0"; /* a lone point still shows, as a dot (round caps) */
    d += `${move ? "M" : "L"}${col} ${(SPARK_H - 1 - (peak * (SPARK_H - 2)) / top).toFixed(1)}`;
    lone = move;
    col = -1;
  };
  for (const [at, v] of pts) {
    if (v == null || at < from) { flush(); prev = -Infinity; continue; }
    const x = Math.min(SPARK_W, Math.round(((at - from) * SPARK_W) / HOUR_MS));
    const gap = at - prev > 30000;
    prev = at;
    if (x === col && !gap) { if (v > peak) peak = v; continue; }
    flush();
    col = x; peak = v; move = gap;
  }
  flush();
  if (lone) d += "h0";
  return `<svg class="spark ${cls || ""}" viewBox="0 0 ${SPARK_W} ${SPARK_H}" width="${SPARK_W}"` +
         ` height="${SPARK_H}" preserveAspectRatio="none"><path d="${d}"/></svg>`;
}

/* The points of one field: history then the latest sample when newer. */
function series(st, field) {
  const out = [];
  for (const p of st.history) out.push([Number(p.at), p[field] == null ? null : Number(p[field])]);
  const l = st.latest;
  if (l && l.at != null && (!out.length || Number(l.at) > out[out.length - 1][0]))
    out.push([Number(l.at), l[field] == null ? null : Number(l[field])]);
  return out;
}

const fixed = (v, n) => (v == null || !isFinite(v) ? DASH : Number(v).toFixed(n));

function taskChip(t) {
  const svc = t.service_name || "";
  return `<span class="chip" data-task="${esc(t.id)}"><span class="swatch" style="background:` +
         `${serviceColour(svc)}"></span>${esc(t.name || String(t.id || "").slice(0, 12))}` +
         ` <span class="dim">${fixed(t.cpu_percent, 1)}% · ${t.mem_bytes != null ? bytes(t.mem_bytes) : DASH}` +
         `</span></span>`;
}

function nodeRow(n, st, now) {
  const l = st && st.latest;
  const empty = `<td class="num">${DASH}</td>`;
  let cells;
  if (!l) {
    cells = empty.repeat(5);
  } else {
    const cpu = series(st, "cpu_percent"), mem = series(st, "mem_used"), load = series(st, "load1");
    const temp = series(st, "temp_c");
    const hasTemp = temp.some((p) => p[1] != null);
    cells = `<td class="num cpu"><span class="fig">${fixed(l.cpu_percent, 1)}%</span>` +
            `${sparkline(cpu, now, 100, "cpu")}</td>` +
            `<td class="num mem"><span class="fig">${bytes(l.mem_used)} / ${bytes(l.mem_total)}</span>` +
            `${sparkline(mem, now, l.mem_total, "mem")}</td>` +
            `<td class="num disk"><span class="fig">${bytes(l.disk_used)} / ${bytes(l.disk_total)}</span>` +
            `<div class="bar"><i style="width:${pct(l.disk_total ? 100 * l.disk_used / l.disk_total : 0)}%">` +
            `</i></div></td>` +
            `<td class="num load"><span class="fig">${fixed(l.load1, 2)} ${fixed(l.load5, 2)} ` +
            `${fixed(l.load15, 2)}</span>${sparkline(load, now, l.cpus || 1, "load")}</td>` +
            `<td class="num temp"><span class="fig">${l.temp_c == null ? DASH : fixed(l.temp_c, 0) + "°C"}` +
            `</span>${hasTemp ? sparkline(temp, now, 100, "temp") : ""}</td>`;
  }
  const tasks = st && st.tasks.length ? st.tasks.map(taskChip).join("") : '<span class="empty">no tasks</span>';
  const seen = l && l.at ? ` title="last sample ${esc(new Date(Number(l.at)).toLocaleTimeString())}"` : "";
  return `<tr class="node-row${n.status === "down" ? " down" : ""}" data-node="${esc(n.id)}"` +
         ` data-hostname="${esc(n.hostname)}"><td${seen}><b>${esc(n.hostname)}</b>` +
         `${n.manager_status === "leader" ? ' <span class="leader" title="leader">★</span>' : ""}` +
         `<div class="node-meta">${esc(n.role)} · <span class="st-${esc(n.status)}">${esc(n.status)}` +
         `</span></div></td>${cells}<td class="node-tasks">${tasks}</td></tr>`;
}

/* One innerHTML, and none when nothing changed (the 10 s tick often brings nothing new). */
function renderNodes(s) {
  /* the daemon's clock: the newest sample, so that a skewed browser clock does not shift lines */
  let now = 0;
  for (const st of s.stats.values()) if (st.latest && Number(st.latest.at) > now) now = Number(st.latest.at);
  if (!now) now = Date.now();
  const rows = s.nodes.map((n) => nodeRow(n, s.stats.get(n.id), now)).join("");
  const html = `<table class="nodes"><thead><tr><th>Node</th><th>CPU</th><th>Memory</th>` +
    `<th>Disk</th><th>Load 1 5 15</th><th>Temp</th><th>Tasks (CPU · memory)</th></tr></thead>` +
    `<tbody>${rows || '<tr><td colspan="7" class="empty">no nodes</td></tr>'}</tbody></table>` +
    `<p class="dim note">Lines: the last hour (one point per 10 s, kept by the leader).</p>`;
  if (html === state.nodesHtml) return;
  state.nodesHtml = html;
  $("nodes").innerHTML = html;
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
  if (view === "nodes" && state.snapshot) refresh(); /* fresh stats */
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
  await refresh(true);
  connectEvents();
  setInterval(() => { if (!document.hidden) refresh(true); }, TICK_MS);
}

start();
