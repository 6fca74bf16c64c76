/* shoal dashboard, Alerts tab: open and past alerts (GET /v1/alerts/history),
 * the rules (GET /v1/alerts), a form to add one and a button to remove one
 * (the admin link only: the read-only token gets 403, shown as such). Uses
 * app.js's state, $, esc and api. */
"use strict";

const alertsView = { html: "", fetching: false, message: "" };

function alertTime(ms) {
  return ms ? new Date(Number(ms)).toLocaleString() : "";
}

function alertRow(a) {
  const cls = a.state === "open" ? "bad" : "ok";
  return `<tr data-alert="${esc(a.id)}" data-state="${esc(a.state)}"><td class="${cls}">${esc(a.state)}</td>` +
         `<td>${esc(a.rule)}</td><td>${esc(a.hostname || "")}</td><td>${esc(a.message)}</td>` +
         `<td>${esc(alertTime(a.since))}</td><td>${esc(alertTime(a.resolved_at))}</td></tr>`;
}

function ruleCondition(r) {
  if (r.metric) return `${r.metric} > ${r.above} for ${Math.round((r.for_ms || 0) / 1000)}s`;
  if (r.event === "task-flapping")
    return `task-flapping ${r.restarts} in ${Math.round((r.window_ms || 0) / 1000)}s`;
  return r.event;
}

function ruleRow(r) {
  const notify = (r.notify || []).map((n) => `${n.type}=${n.to}`).join(", ");
  return `<tr data-rule="${esc(r.name)}"><td>${esc(r.name)}</td><td>${esc(ruleCondition(r))}</td>` +
         `<td>${esc(r.node)}</td><td>${esc(notify)}</td>` +
         `<td><button class="alert-rm" data-id="${esc(r.id)}">remove</button></td></tr>`;
}

function alertTable(head, rows, empty) {
  return `<table><thead><tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr></thead><tbody>` +
         `${rows || `<tr><td colspan="${head.length}" class="empty">${empty}</td></tr>`}</tbody></table>`;
}

const ALERT_FORM =
  `<form id="alert-form" class="alert-form">` +
  `<input name="name" placeholder="name" required>` +
  `<select name="what"><option>cpu</option><option>memory</option><option>disk</option>` +
  `<option>load</option><option>temperature</option><option>node-down</option>` +
  `<option>task-flapping</option><option>backup-failing</option></select>` +
  `<input name="above" placeholder="above" size="6"><input name="for" placeholder="for (2m)" size="8">` +
  `<input name="node" placeholder="node (all)" size="10">` +
  `<input name="notify" placeholder="webhook=URL or email=ADDRESS" size="32">` +
  `<button type="submit">Add rule</button></form>`;

async function alertSend(method, path, body) {
  const resp = await fetch(path, {
    method, cache: "no-store", body: body ? JSON.stringify(body) : undefined,
    headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json" } });
  const answer = await resp.json().catch(() => ({}));
  if (resp.status === 403) throw new Error("this link is read-only: use shoal dashboard url --admin");
  if (!resp.ok) throw new Error(answer.message || resp.statusText);
  return answer;
}

function alertFormBody(form) {
  const f = new FormData(form), what = f.get("what");
  const body = { name: f.get("name").trim() };
  if (["node-down", "task-flapping", "backup-failing"].includes(what)) body.event = what;
  else { body.metric = what; body.above = Number(f.get("above")); }
  if (f.get("for").trim() && body.metric) body.for = f.get("for").trim();
  if (f.get("node").trim()) body.node = f.get("node").trim();
  if (f.get("notify").trim()) body.notify = [f.get("notify").trim()];
  return body;
}

async function alertAction(fn) {
  try {
    await fn();
    alertsView.message = "";
  } catch (e) {
    alertsView.message = e.message;
  }
  alertsView.html = "";
  renderAlerts();
}

/* Fetches and draws the lists when they changed; the form is drawn once (what
 * is typed in it stays across refreshes). */
async function renderAlerts() {
  if (alertsView.fetching) return;
  alertsView.fetching = true;
  try {
    const [rules, alerts] = await Promise.all([api("/v1/alerts"), api("/v1/alerts/history")]);
    const open = alerts.filter((a) => a.state === "open"), past = alerts.filter((a) => a.state !== "open");
    const head = ["State", "Rule", "Node", "Message", "Since", "Resolved"];
    const html = `<h2>Open alerts (${open.length})</h2>` +
      alertTable(head, open.map(alertRow).join(""), "no open alert") +
      `<h2>Past alerts</h2>` + alertTable(head, past.map(alertRow).join(""), "no past alert") +
      `<h2>Rules</h2>` +
      alertTable(["Name", "Condition", "Node", "Notify", ""], rules.map(ruleRow).join(""), "no rules") +
      `<p class="alert-msg bad">${esc(alertsView.message)}</p>`;
    if (html === alertsView.html) return;
    alertsView.html = html;
    const root = $("alerts");
    if (!root.querySelector("#alert-form")) {
      root.innerHTML = `<div id="alert-lists"></div><h2>Add a rule</h2>${ALERT_FORM}`;
      const form = root.querySelector("#alert-form");
      form.onsubmit = (ev) => {
        ev.preventDefault();
        alertAction(() => alertSend("POST", "/v1/alerts", alertFormBody(form)));
      };
    }
    $("alert-lists").innerHTML = html;
    for (const b of root.querySelectorAll(".alert-rm"))
      b.onclick = () => alertAction(() => alertSend("DELETE", `/v1/alerts/${encodeURIComponent(b.dataset.id)}`));
  } catch (e) {
    showError(e);
  } finally {
    alertsView.fetching = false;
  }
}
