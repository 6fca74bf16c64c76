/* shoal dashboard: the batch jobs' views. Gantt (as OAR's Drawgantt): nodes
 * and their cores down the side, time across, past, running and planned jobs
 * (the backfilling plan, computed by the answering manager for GET /v1/jobs/gantt),
 * reservations, a "now" line, zoom and scroll, a job's details on click.
 * Resources (as Monika, GET /v1/resources): every core of every node, free,
 * held by a job, best-effort, absent or suspected. app.js calls renderGantt()
 * and renderResources() whenever it renders (each change event, the 10 s
 * tick): each fetches its data (one fetch at a time) and redraws with one
 * innerHTML when the HTML changed. Uses app.js's api(), esc() and HOUR_MS. */
"use strict";

const GANTT_ROW_PX = 16;      /* one core */
const GANTT_LABEL_PX = 150;   /* the nodes' column */
const GANTT_SPANS = [HOUR_MS / 4, HOUR_MS, 3 * HOUR_MS, 6 * HOUR_MS, 24 * HOUR_MS, 7 * 24 * HOUR_MS];

const jobsView = {
  span: 3 * HOUR_MS,   /* the window's width */
  start: null,         /* its left edge (ms); null: follows now (a quarter of the span before) */
  gantt: null,         /* the last answer of /v1/jobs/gantt */
  resources: null,     /* ... of /v1/resources */
  selected: null,      /* the job whose details show */
  html: { gantt: "", resources: "" },
  busy: { gantt: false, resources: false },
  again: { gantt: false, resources: false },
};

/* One fetch per view at a time; a render asked meanwhile fetches once more. */
async function fetchJobsView(which, path) {
  if (jobsView.busy[which]) { jobsView.again[which] = true; return; }
  jobsView.busy[which] = true;
  try {
    jobsView[which] = await api(path());
    drawJobsView(which);
  } catch (e) {
    showError(e);
  } finally {
    jobsView.busy[which] = false;
    if (jobsView.again[which]) { jobsView.again[which] = false; fetchJobsView(which, path); }
  }
}

function drawJobsView(which) {
  if (state.view !== which) return;
  const html = which === "gantt" ? ganttHtml(jobsView.gantt) : resourcesHtml(jobsView.resources);
  if (html === jobsView.html[which]) return;
  jobsView.html[which] = html;
  $(which).innerHTML = html;
}

/* A stable colour per job id, never green (free cores are). */
function jobColour(id) {
  let h = 7;
  for (const c of String(id)) h = (h * 37 + c.charCodeAt(0)) >>> 0;
  return `hsl(${(160 + ((h * 47) % 290)) % 360}, 50%, 42%)`;
}

const hhmm = (ms) => new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const when = (ms) => (ms ? new Date(ms).toLocaleString() : "—");

/* ---- Gantt ---- */

function ganttWindow() {
  const now = jobsView.gantt ? jobsView.gantt.now : Date.now();
  const from = jobsView.start != null ? jobsView.start : now - jobsView.span / 4;
  return { from: Math.round(from), to: Math.round(from + jobsView.span) };
}

function renderGantt() {
  drawJobsView("gantt");
  fetchJobsView("gantt", () => {
    const w = ganttWindow();
    return `/v1/jobs/gantt?from=${w.from}&to=${w.to}`;
  });
}

/* Lays each job's cores on its nodes' core lanes: running jobs first in id
 * order from core 0 (as the Resources view does), then the others by start,
 * each on the lowest lanes free for its whole time (overlapping when none). */
function layLanes(nodes, jobs) {
  const lanes = new Map(nodes.map((n) => [n.id, Array.from({ length: n.cores }, () => [])]));
  const active = (j) => !j.planned && !isFinal(j);
  const order = jobs.filter((j) => j.start != null).sort((a, b) =>
    active(b) - active(a) || (active(a) ? Number(a.id) - Number(b.id) : a.start - b.start));
  const out = [];
  for (const j of order) {
    for (const a of j.assigned || []) {
      const mine = lanes.get(a.node_id);
      if (!mine) continue;
      const free = (l) => mine[l].every(([s, e]) => e <= j.start || s >= j.stop);
      const want = Math.min(a.cores || 1, mine.length);
      let first = 0;
      for (let l = 0; l + want <= mine.length; l++) {
        let ok = true;
        for (let k = l; k < l + want && ok; k++) ok = free(k);
        if (ok) { first = l; break; }
      }
      for (let k = first; k < first + want; k++) mine[k].push([j.start, j.stop]);
      out.push({ job: j, node_id: a.node_id, lane: first, lanes: want });
    }
  }
  return out;
}

function isFinal(j) { return j.state === "Terminated" || j.state === "Error"; }

function barClass(j) {
  if (j.planned) return "planned";
  if (isFinal(j)) return j.state === "Error" ? "past error" : "past";
  return j.besteffort ? "running besteffort" : "running";
}

function ganttAxis(from, to, width) {
  const span = to - from;
  const steps = [5, 10, 15, 30, 60, 120, 180, 360, 720, 1440].map((m) => m * 60000);
  const step = steps.find((s) => (s / span) * width >= 70) || 1440 * 60000;
  const first = Math.ceil(from / step) * step;
  let html = "";
  for (let t = first; t < to; t += step) {
    const x = ((t - from) / span) * width;
    const label = step >= 1440 * 60000 ? new Date(t).toLocaleDateString() : hhmm(t);
    html += `<span class="gantt-tick" style="left:${x.toFixed(1)}px">${esc(label)}</span>`;
  }
  return html;
}

function ganttDetails(g) {
  const j = g.jobs.find((x) => x.id === jobsView.selected);
  if (!j) return "";
  const nodes = (j.assigned || []).map((a) => `${a.hostname} (${a.cores} core${a.cores === 1 ? "" : "s"})`);
  const rows = [["Job", `${j.id}${j.name ? " · " + j.name : ""}`], ["State", j.state],
    ["Queue", j.queue], ["User", j.user || ""], ["Resources", j.request],
    ["Command", j.command], [j.planned ? "Planned start" : "Start", when(j.start)],
    [j.planned || !isFinal(j) ? "Walltime end" : "Stop", when(j.stop)],
    ["Nodes", nodes.join(", ")], ["Reservation", j.reservation_at ? when(j.reservation_at) : ""],
    ["Exit code", j.exit_code != null ? j.exit_code : ""], ["Message", j.message || ""]];
  return `<div id="gantt-details" data-job="${esc(j.id)}"><button class="close" data-close="1">×</button>` +
    `<table>${rows.filter((r) => r[1] !== "" && r[1] != null).map((r) =>
      `<tr><th>${esc(r[0])}</th><td>${esc(r[1])}</td></tr>`).join("")}</table></div>`;
}

function ganttHtml(g) {
  if (!g) return '<div class="empty">loading…</div>';
  const { from, to } = ganttWindow();
  const root = $("gantt");
  const width = Math.max(300, (root.clientWidth || 1200) - GANTT_LABEL_PX - 30);
  const x = (t) => Math.max(0, Math.min(width, ((t - from) / (to - from)) * width));
  const top = new Map();
  let y = 0, labels = "", rows = "";
  for (const n of g.nodes) {
    top.set(n.id, y);
    const h = n.cores * GANTT_ROW_PX;
    labels += `<div class="gantt-node ${n.state !== "Alive" ? "off" : ""}" style="height:${h}px"` +
      ` data-hostname="${esc(n.hostname)}"><b>${esc(n.hostname)}</b><span class="dim">` +
      `${n.cores} core${n.cores === 1 ? "" : "s"}${n.state !== "Alive" ? " · " + esc(n.state) : ""}</span></div>`;
    rows += `<div class="gantt-row ${n.state !== "Alive" ? "off" : ""}" style="top:${y}px;height:${h}px"></div>`;
    y += h;
  }
  let bars = "";
  for (const b of layLanes(g.nodes, g.jobs)) {
    const j = b.job;
    if (j.stop <= from || j.start >= to) continue;
    const left = x(j.start), right = x(j.stop);
    const res = j.reservation_at ? " reservation" : "";
    const sel = j.id === jobsView.selected ? " selected" : "";
    bars += `<div class="gbar ${barClass(j)}${res}${sel}" data-job="${esc(j.id)}" data-state="${esc(j.state)}"` +
      ` style="left:${left.toFixed(1)}px;width:${Math.max(3, right - left).toFixed(1)}px;` +
      `top:${top.get(b.node_id) + b.lane * GANTT_ROW_PX + 1}px;height:${b.lanes * GANTT_ROW_PX - 2}px;` +
      `background-color:${jobColour(j.id)}" title="${esc(`job ${j.id} ${j.name || ""} ${j.state}`)}">` +
      `${esc(j.id)}${j.name ? " " + esc(j.name) : ""}</div>`;
  }
  const now = g.now >= from && g.now <= to
    ? `<div class="gantt-now" style="left:${x(g.now).toFixed(1)}px;height:${y}px" title="now"></div>` : "";
  const unplaced = g.jobs.filter((j) => j.start == null).map((j) =>
    `<span class="chip gwait" data-job="${esc(j.id)}">${esc(j.id)} ${esc(j.state)}` +
    `${j.message ? ": " + esc(j.message) : ""}</span>`).join("");
  const spanLabel = jobsView.span >= 24 * HOUR_MS ? `${jobsView.span / (24 * HOUR_MS)} d`
    : jobsView.span >= HOUR_MS ? `${jobsView.span / HOUR_MS} h` : `${jobsView.span / 60000} min`;
  return `<div class="gantt-bar-tools"><button data-gantt="earlier" title="scroll back">◀</button>` +
    `<button data-gantt="now" title="back to now">now</button>` +
    `<button data-gantt="later" title="scroll on">▶</button>` +
    `<button data-gantt="zoom-in" title="zoom in">+</button><button data-gantt="zoom-out" title="zoom out">−</button>` +
    `<span class="dim">${esc(new Date(from).toLocaleString())} → ${esc(new Date(to).toLocaleString())}` +
    ` (${spanLabel})</span><span class="legend"><i class="gbar past"></i>ended <i class="gbar running"></i>running` +
    ` <i class="gbar planned"></i>planned <i class="gbar reservation"></i>reservation</span></div>` +
    `<div class="gantt-grid"><div class="gantt-labels" style="width:${GANTT_LABEL_PX}px">` +
    `<div class="gantt-axis-pad"></div>${labels || '<div class="empty">no nodes</div>'}</div>` +
    `<div class="gantt-time" style="width:${width}px"><div class="gantt-axis">${ganttAxis(from, to, width)}</div>` +
    `<div class="gantt-rows" style="height:${y}px">${rows}${bars}${now}</div></div></div>` +
    (unplaced ? `<p class="dim note">Waiting, not on the plan: ${unplaced}</p>` : "") +
    ganttDetails(g);
}

/* The window one zoom step in (-1) or out (+1), around its middle. */
function ganttZoom(step) {
  const w = ganttWindow();
  const i = GANTT_SPANS.indexOf(jobsView.span);
  const span = GANTT_SPANS[Math.max(0, Math.min(GANTT_SPANS.length - 1, i + step))];
  if (jobsView.start != null) jobsView.start = (w.from + w.to) / 2 - span / 2;
  jobsView.span = span;
}

/* Zoom and scroll change the window and fetch it; a click on a bar shows its details. */
function ganttClick(ev) {
  const tool = ev.target.closest("[data-gantt]");
  const bar = ev.target.closest("[data-job]");
  if (tool) {
    const w = ganttWindow();
    const act = tool.dataset.gantt;
    if (act === "now") jobsView.start = null;
    else if (act === "earlier") jobsView.start = w.from - jobsView.span / 2;
    else if (act === "later") jobsView.start = w.from + jobsView.span / 2;
    else ganttZoom(act === "zoom-in" ? -1 : 1);
    renderGantt();
  } else if (ev.target.closest("[data-close]")) {
    jobsView.selected = null;
    drawJobsView("gantt");
  } else if (bar) {
    jobsView.selected = bar.dataset.job;
    drawJobsView("gantt");
  }
}

/* Over the chart: Ctrl + wheel zooms, Shift + wheel (or a sideways wheel) scrolls; a plain
 * wheel scrolls the page as usual. */
function ganttWheel(ev) {
  const sideways = Math.abs(ev.deltaX) > Math.abs(ev.deltaY);
  if (!ev.target.closest(".gantt-time") || !(ev.ctrlKey || ev.shiftKey || sideways)) return;
  ev.preventDefault();
  if (ev.ctrlKey) {
    ganttZoom(ev.deltaY < 0 ? -1 : 1);
  } else {
    const delta = sideways ? ev.deltaX : ev.deltaY;
    jobsView.start = ganttWindow().from + Math.sign(delta) * jobsView.span / 8;
  }
  renderGantt();
}

/* ---- Resources ---- */

function renderResources() {
  drawJobsView("resources");
  fetchJobsView("resources", () => "/v1/resources");
}

function resourcesHtml(r) {
  if (!r) return '<div class="empty">loading…</div>';
  const byNode = new Map();
  for (const c of r.items) {
    if (!byNode.has(c.node_id)) byNode.set(c.node_id, []);
    byNode.get(c.node_id).push(c);
  }
  const count = (s) => r.items.filter((c) => c.status === s).length;
  const nodes = [...byNode.values()].map((cores) => {
    const n = cores[0];
    const cells = cores.map((c) => {
      const bg = c.status === "job" || c.status === "besteffort" ? ` style="background:${jobColour(c.job_id)}"` : "";
      const text = c.job_id ? c.job_id : c.status;
      return `<div class="core ${esc(c.status)}" data-core="${c.resource_id}" data-status="${esc(c.status)}"` +
        `${c.job_id ? ` data-job="${esc(c.job_id)}"` : ""}${bg} title="resource ${c.resource_id} · core ` +
        `${c.cpuset} · ${esc(c.state)}${c.job_id ? " · job " + esc(c.job_id) : ""}"><span class="dim">` +
        `${c.cpuset}</span>${esc(text)}</div>`;
    }).join("");
    return `<div class="res-node ${n.state !== "Alive" ? "off" : ""}" data-hostname="${esc(n.network_address)}">` +
      `<div class="res-head"><b>${esc(n.network_address)}</b> <span class="dim">${esc(n.state)}` +
      `${n.availability && n.availability !== "active" ? " · " + esc(n.availability) : ""}</span></div>` +
      `<div class="cores">${cells}</div></div>`;
  }).join("");
  return `<div class="res-legend"><span class="core free">free ${count("free")}</span>` +
    `<span class="core job">job ${count("job")}</span><span class="core besteffort">best-effort ` +
    `${count("besteffort")}</span><span class="core absent">absent ${count("absent")}</span>` +
    `<span class="core suspected">suspected ${count("suspected")}</span></div>` +
    `<div class="res-nodes">${nodes || '<div class="empty">no nodes</div>'}</div>`;
}

/* this script comes after the views' sections */
$("gantt").addEventListener("click", ganttClick);
$("gantt").addEventListener("wheel", ganttWheel, { passive: false });
