// Browser tests of the dashboard: Debian's Chromium driven by playwright-core.
// Started by tests/integration/test_dashboard.py, which makes the cluster and
// passes it here through the environment:
//   DASHBOARD_BASE   http://127.0.0.1:PORT (node-1's dashboard, inside its netns)
//   DASHBOARD_TOKEN  the read-only token
//   SHOAL_BIN, SHOAL_SOCK   the CLI and node-1's API socket (for scale)
//   SERVICE          a running replicated service; HOSTNAMES: comma-separated
//   SCREENSHOT_DIR   where the PNGs go
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (k) => { if (!process.env[k]) throw new Error(`${k} is not set`); return process.env[k]; };
const BASE = env("DASHBOARD_BASE"), TOKEN = env("DASHBOARD_TOKEN");
const SERVICE = env("SERVICE"), HOSTNAMES = env("HOSTNAMES").split(",");
const SHOTS = env("SCREENSHOT_DIR");
const LIVE_MS = 5000; // "within a few seconds" of the cluster state changing

let browser, profile; // a persistent context: Playwright's way to use our own empty profile

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  profile = mkdtempSync(join(tmpdir(), "shoal-chromium-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true, // --headless
    viewport: { width: 1280, height: 720 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
  rmSync(profile, { recursive: true, force: true });
});

async function api(path) {
  const resp = await fetch(BASE + path, { headers: { Authorization: `Bearer ${TOKEN}` } });
  assert.equal(resp.status, 200, `${path}: ${resp.status}`);
  return resp.json();
}

const running = async () => (await api("/v1/tasks")).filter((t) => t.state === "running");
const runningOf = async (svc) => (await running()).filter((t) => t.service_name === svc);

async function poll(fn, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// A live view redraws itself: an element can be replaced between finding it
// and measuring it (boundingBox() is then null); measure the one in place.
function boxOf(locator) {
  return poll(() => locator.boundingBox(), 5000, "a box for " + locator);
}

async function openDashboard(token) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.goto(`${BASE}/ui/#token=${token}`);
  return page;
}

const boxes = (page, sel) => page.locator(`#visualizer .task${sel}`).count();

test("a wrong token is refused", async () => {
  const resp = await fetch(`${BASE}/v1/nodes`, { headers: { Authorization: "Bearer nope" } });
  assert.equal(resp.status, 401);
  assert.match((await resp.json()).message, /access denied/);
  const page = await openDashboard("0123456789abcdef0123456789abcdef");
  await page.getByText("Access denied").waitFor({ timeout: 10000 });
  assert.equal(await page.locator("#visualizer .node").count(), 0);
  await page.screenshot({ path: join(SHOTS, "dashboard-denied.png") });
  await page.close();
});

test("the visualizer lists every node and every running task", async () => {
  const page = await openDashboard(TOKEN);
  await page.locator("#live.on").waitFor({ timeout: 10000 });
  const tasks = await running();
  await page.waitForFunction((n) => document.querySelectorAll("#visualizer .node").length === n,
                             HOSTNAMES.length, { timeout: 10000 });
  const shown = await page.locator("#visualizer .node").evaluateAll(
    (cols) => cols.map((c) => c.dataset.hostname));
  assert.deepEqual([...shown].sort(), [...HOSTNAMES].sort());
  for (const t of tasks) {
    const box = page.locator(`#visualizer [data-task="${t.id}"]`);
    await box.waitFor({ timeout: 5000 });
    assert.equal(await box.getAttribute("data-state"), "running");
    // each task sits in the column of its node
    const column = page.locator(`#visualizer .node:has([data-task="${t.id}"])`);
    assert.equal(await column.getAttribute("data-node"), t.node_id);
  }
  assert.equal(await page.locator("#visualizer .node-head .leader").count(), 1);
  await page.screenshot({ path: join(SHOTS, "dashboard-visualizer.png") });
  await page.close();
});

test("the nodes tab shows every node's figures, sparklines and tasks", async () => {
  const page = await openDashboard(TOKEN);
  await page.locator("#live.on").waitFor({ timeout: 10000 });
  await page.click('#tabs button[data-view="nodes"]');
  assert.equal(await page.locator("#visualizer").isVisible(), false);
  // every node: a row with a CPU figure and a drawn CPU sparkline (workers' samples come
  // with their heartbeats; the tab re-fetches stats every 10 s)
  await page.waitForFunction((hosts) => hosts.every((h) => {
    const row = document.querySelector(`#nodes tr.node-row[data-hostname="${h}"]`);
    const cpu = row && row.querySelector("td.cpu");
    const path = cpu && cpu.querySelector("svg.spark path");
    return cpu && /^\d+(\.\d)?%$/.test(cpu.querySelector(".fig").textContent) &&
           path && /^M[\d.]+ [\d.]+/.test(path.getAttribute("d"));
  }), HOSTNAMES, { timeout: 30000 });
  for (const h of HOSTNAMES) {
    const row = page.locator(`#nodes tr.node-row[data-hostname="${h}"]`);
    assert.match(await row.locator("td.mem .fig").textContent(), /B \/ .*B$/);
    assert.match(await row.locator("td.disk .fig").textContent(), /B \/ .*B$/);
    assert.match(await row.locator("td.load .fig").textContent(), /^[\d.]+ [\d.]+ [\d.]+$/);
    assert.match(await row.locator("td.temp .fig").textContent(), /^(—|\d+°C)$/);
  }
  // each running task under its node, with its CPU % and memory
  const tasks = await running();
  await page.waitForFunction((ts) => ts.every((t) => document.querySelector(
    `#nodes tr.node-row[data-node="${t.node_id}"] .node-tasks [data-task="${t.id}"]`)),
    tasks.map((t) => ({ id: t.id, node_id: t.node_id })), { timeout: 30000 });
  const chip = await page.locator(`#nodes [data-task="${tasks[0].id}"]`).textContent();
  assert.match(chip, new RegExp(`^${tasks[0].name} [\\d.]+% · [\\d.]+[kMG]?B$`));
  await page.screenshot({ path: join(SHOTS, "dashboard-nodes.png") });
  await page.close();
});

test("scaling a service and killing a task show up live, without a reload", async () => {
  const page = await openDashboard(TOKEN);
  await page.locator("#live.on").waitFor({ timeout: 10000 });
  await page.evaluate(() => { window.sameDocument = true; });
  const before = (await runningOf(SERVICE)).length;
  await page.waitForFunction(([s, n]) => document.querySelectorAll(
    `#visualizer .task[data-service="${s}"][data-state="running"]`).length === n,
    [SERVICE, before], { timeout: 10000 });

  // scale up: once the cluster runs them, the page shows them within LIVE_MS
  const target = before + 3;
  execFileSync(env("SHOAL_BIN"), ["-H", `unix://${env("SHOAL_SOCK")}`, "service", "scale",
                                   "--detach", `${SERVICE}=${target}`], { stdio: "pipe" });
  await poll(async () => (await runningOf(SERVICE)).length === target, 60000, "the scale-up");
  await page.waitForFunction(([s, n]) => document.querySelectorAll(
    `#visualizer .task[data-service="${s}"][data-state="running"]`).length === n,
    [SERVICE, target], { timeout: LIVE_MS });
  await page.screenshot({ path: join(SHOTS, "dashboard-scaled.png") });

  // kill -9 one task's process: its box stops showing it as running
  const victim = (await runningOf(SERVICE)).find((t) => t.pid > 0);
  assert.ok(victim, "a running task with a pid");
  process.kill(victim.pid, "SIGKILL");
  await page.waitForFunction((id) => {
    const el = document.querySelector(`#visualizer [data-task="${id}"]`);
    return !el || el.dataset.state !== "running";
  }, victim.id, { timeout: LIVE_MS });
  // ...and the orchestrator's replacement appears too
  await poll(async () => (await runningOf(SERVICE)).length === target, 60000, "the replacement");
  await page.waitForFunction(([s, n]) => document.querySelectorAll(
    `#visualizer .task[data-service="${s}"][data-state="running"]`).length === n,
    [SERVICE, target], { timeout: LIVE_MS });

  assert.equal(await page.evaluate(() => window.sameDocument), true, "the page was reloaded");

  await page.click('#tabs button[data-view="events"]');
  await page.getByText(`task ${victim.name} failed`).first().waitFor({ timeout: LIVE_MS });
  await page.getByText(/task .* started/).first().waitFor({ timeout: LIVE_MS });
  await page.screenshot({ path: join(SHOTS, "dashboard-events.png") });

  await page.click('#tabs button[data-view="services"]');
  const row = page.locator(`#services tr[data-service="${SERVICE}"] .replicas`);
  assert.equal((await row.textContent()).trim(), `${target}/${target}`);
  const portsCell = page.locator(`#services tr[data-service="${SERVICE}"] .ports`);
  assert.equal((await portsCell.textContent()).trim(), "*:8090->80/tcp");
  await page.screenshot({ path: join(SHOTS, "dashboard-services.png") });
  await page.close();
});

// ---- batch jobs: Gantt and Resources ----

const cli = (...args) => execFileSync(env("SHOAL_BIN"), ["-H", `unix://${env("SHOAL_SOCK")}`, ...args],
                                      { encoding: "utf8" }).trim();
const jobOf = (id) => api(`/v1/jobs/${id}`);

test("the Gantt tab draws past, running and planned jobs, a now line, and details on click", async () => {
  // a job that ran, one holding every core of every node, one planned after it
  const past = cli("job", "sub", "-n", "pastjob", "true");
  await poll(async () => (await jobOf(past)).state === "Terminated", 60000, "the first job's end");
  const nodes = HOSTNAMES.length;
  const cores = Math.min(...(await api("/v1/nodes")).map((n) => n.resources.cpus));
  const big = cli("job", "sub", "-n", "bigjob", "-l", `/nodes=${nodes}/core=${cores},walltime=0:30:0`,
                  "sleep 1000");
  await poll(async () => (await jobOf(big)).state === "Running", 60000, "the big job running");
  const next = cli("job", "sub", "-n", "nextjob", "-l", "core=1,walltime=0:10:0", "true");
  try {
    const page = await openDashboard(TOKEN);
    await page.locator("#live.on").waitFor({ timeout: 10000 });
    await page.click('#tabs button[data-view="gantt"]');
    // a bar per node for the running job, labelled with its id
    await page.waitForFunction((id) => document.querySelectorAll(
      `#gantt .gbar.running[data-job="${id}"]`).length > 0, big, { timeout: LIVE_MS });
    assert.equal(await page.locator(`#gantt .gbar.running[data-job="${big}"]`).count(), nodes);
    assert.match(await page.locator(`#gantt .gbar[data-job="${big}"]`).first().textContent(),
                 new RegExp(`^${big} bigjob`));
    // the waiting job at its planned start: after the big one's walltime, right of "now"
    const planned = page.locator(`#gantt .gbar.planned[data-job="${next}"]`);
    await planned.waitFor({ timeout: LIVE_MS });
    const nowLine = page.locator("#gantt .gantt-now");
    assert.equal(await nowLine.count(), 1);
    const nowX = (await boxOf(nowLine)).x;
    const bigBox = await boxOf(page.locator(`#gantt .gbar[data-job="${big}"]`).first());
    const plannedBox = await boxOf(planned);
    assert.ok(bigBox.x <= nowX + 1 && bigBox.x + bigBox.width > nowX, "the running bar spans now");
    assert.ok(plannedBox.x >= bigBox.x + bigBox.width - 2, "planned after the running job");
    // the job that ended, left of now
    const pastBar = page.locator(`#gantt .gbar.past[data-job="${past}"]`);
    await pastBar.waitFor({ timeout: LIVE_MS });
    assert.ok((await boxOf(pastBar)).x <= nowX);
    // a click shows the job's details
    await page.locator(`#gantt .gbar[data-job="${big}"]`).first().click();
    const details = page.locator(`#gantt-details[data-job="${big}"]`);
    await details.waitFor({ timeout: 2000 });
    const text = await details.textContent();
    assert.match(text, /bigjob/);
    assert.match(text, /Running/);
    assert.match(text, /sleep 1000/);
    await page.screenshot({ path: join(SHOTS, "dashboard-gantt.png") });
    await page.locator(`#gantt .gbar.planned[data-job="${next}"]`).click();
    await page.locator(`#gantt-details[data-job="${next}"]`).getByText("Planned start").waitFor({ timeout: 2000 });
    // zoom and scroll change the window
    const range = () => page.locator("#gantt .gantt-bar-tools .dim").first().textContent();
    const before = await range();
    await page.click('#gantt [data-gantt="zoom-out"]');
    await page.waitForFunction((b) => document.querySelector("#gantt .gantt-bar-tools .dim").textContent !== b,
                               before, { timeout: LIVE_MS });
    await page.click('#gantt [data-gantt="earlier"]');
    await page.click('#gantt [data-gantt="now"]');
    await nowLine.waitFor({ timeout: LIVE_MS });
    // Shift + wheel over the chart scrolls it, Ctrl + wheel zooms
    const box = await boxOf(page.locator("#gantt .gantt-rows"));
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    for (const key of ["Shift", "Control"]) {
      const was = await range();
      await page.keyboard.down(key);
      await page.mouse.wheel(0, 100);
      await page.keyboard.up(key);
      await page.waitForFunction((b) => document.querySelector("#gantt .gantt-bar-tools .dim").textContent !== b,
                                 was, { timeout: LIVE_MS });
    }
    await page.click('#gantt [data-gantt="now"]');
    await nowLine.waitFor({ timeout: LIVE_MS });
    // live: deleting the planned job takes its bar away without a reload
    cli("job", "rm", next);
    await page.waitForFunction((id) => !document.querySelector(`#gantt .gbar.planned[data-job="${id}"]`),
                               next, { timeout: LIVE_MS });

    // Resources: every core, held by the big job
    await page.click('#tabs button[data-view="resources"]');
    await page.waitForFunction((n) => document.querySelectorAll("#resources .core[data-core]").length === n,
                               nodes * cores, { timeout: LIVE_MS });
    assert.equal(await page.locator(`#resources .core[data-status="job"][data-job="${big}"]`).count(),
                 nodes * cores);
    for (const h of HOSTNAMES)
      assert.equal(await page.locator(`#resources .res-node[data-hostname="${h}"] .core`).count(), cores);
    assert.match(await page.locator(`#resources .core[data-job="${big}"]`).first().textContent(),
                 new RegExp(`${big}$`));
    await page.screenshot({ path: join(SHOTS, "dashboard-resources.png") });
    // live: once the job is deleted its cores are free
    cli("job", "rm", big);
    await poll(async () => ["Error", "Terminated"].includes((await jobOf(big)).state), 60000, "the big job's end");
    await page.waitForFunction((n) => document.querySelectorAll('#resources .core[data-status="free"]').length === n,
                               nodes * cores, { timeout: LIVE_MS });
    await page.close();
  } finally {
    for (const id of [big, next]) {
      try { cli("job", "rm", id); } catch { /* ended already */ }
    }
  }
});

test("the Alerts tab lists rules live; the read-only link cannot add one", async () => {
  const page = await openDashboard(TOKEN);
  await page.click('#tabs button[data-view="alerts"]');
  await page.getByText("Open alerts (0)").waitFor({ timeout: LIVE_MS });
  const shoal = (...args) => execFileSync(env("SHOAL_BIN"),
    ["-H", `unix://${env("SHOAL_SOCK")}`, "alert", ...args]);
  shoal("add", "--name", "ui-down", "--event", "node-down", "--notify", "email=ops@example.org");
  try {
    const rule = page.locator('#alerts tr[data-rule="ui-down"]');
    await rule.waitFor({ timeout: LIVE_MS });
    assert.match(await rule.textContent(), /node-down.*all.*email=ops@example\.org/);
    await page.fill('#alert-form input[name="name"]', "ui-cpu");
    await page.fill('#alert-form input[name="above"]', "90");
    await page.click('#alert-form button[type="submit"]');
    await page.getByText("this link is read-only").waitFor({ timeout: LIVE_MS });
  } finally {
    shoal("rm", "ui-down");
  }
  await page.locator('#alerts tr[data-rule="ui-down"]').waitFor({ state: "detached", timeout: LIVE_MS });
  await page.close();
});
