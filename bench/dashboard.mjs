// Dashboard first paint at scale: the real page, served by a real daemon, with the
// page's API calls answered by Playwright (page.route) with a synthetic cluster of
// NODES nodes and TASKS running tasks over SERVICES services.
// Run through bench/dashboard.sh (which checks the tools); by hand:
//   node bench/dashboard.mjs   (env: SHOAL=build/shoal RUNS=5 NODES=100 TASKS=3000
//                               SERVICES=50 CHROMIUM=/usr/bin/chromium SHOT=path.png)
// Figures per run, from navigation start (performance.timeOrigin):
//   fcp     the page's 'first-contentful-paint'
//   tasks   all TASKS task boxes are in #visualizer's DOM
//   painted the first animation frame after that (the browser has laid them out)
//   nodes   after the run, the Nodes tab: click -> every node row with its sparklines (ms)
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
// the same playwright-core as the browser tests (tests/ui/package.json)
const { chromium } = createRequire(join(REPO, "tests", "ui", "package.json"))("playwright-core");

const SHOAL = resolve(process.env.SHOAL || join(REPO, "build", "shoal"));
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const RUNS = +(process.env.RUNS || 5), NODES = +(process.env.NODES || 100);
const TASKS = +(process.env.TASKS || 3000), SERVICES = +(process.env.SERVICES || 50);
const GOAL_MS = 1000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const freePort = () => new Promise((ok, ko) => {
  const s = createServer().listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)); });
  s.on("error", ko);
});

/* ---- a real daemon: it serves the embedded page, /v1/info and /v1/events ---- */

async function startDaemon(dir) {
  const dashPort = await freePort(), clusterPort = await freePort();
  const sock = join(dir, "run", "shoal.sock");
  const proc = spawn(SHOAL, ["daemon", "--state-dir", join(dir, "state"), "--run-dir", join(dir, "run"),
                             "--dashboard-addr", `127.0.0.1:${dashPort}`],
                     { stdio: ["ignore", "ignore", "inherit"] });
  const cli = (...a) => execFileSync(SHOAL, ["-H", `unix://${sock}`, ...a], { encoding: "utf8" });
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`daemon exited (${proc.exitCode})`);
    if (existsSync(sock)) { try { cli("info"); break; } catch { /* not yet */ } }
    if (i > 200) throw new Error("daemon did not come up");
    await sleep(100);
  }
  cli("swarm", "init", "--advertise-addr", `127.0.0.1:${clusterPort}`);
  const url = cli("dashboard", "url").trim();              // http://127.0.0.1:P/ui/#token=T
  return { proc, url, base: url.slice(0, url.indexOf("/ui/")) };
}

/* ---- the synthetic cluster, serialized once ---- */

function synthetic() {
  const t0 = Date.parse("2025-01-01T00:00:00Z"), now = Date.now();
  const hex = (n, w = 25) => n.toString(16).padStart(w, "0");
  const iso = (ms) => new Date(ms).toISOString();
  const nodes = [], services = [], tasks = [], stats = [];
  for (let i = 0; i < NODES; i++)
    nodes.push({ id: "n" + hex(i, 24), hostname: `node-${String(i + 1).padStart(3, "0")}`,
                 addr: `10.0.${i >> 8}.${i & 255}:2377`, role: i < 3 ? "manager" : "worker",
                 availability: "active", status: "ready",
                 manager_status: i === 0 ? "leader" : i < 3 ? "reachable" : "",
                 labels: {}, resources: { cpus: 8, memory: 34359738368 },
                 created_at: iso(t0), updated_at: iso(t0) });
  const per = Math.ceil(TASKS / SERVICES);
  for (let s = 0; s < SERVICES; s++) {
    const name = `svc-${String(s + 1).padStart(2, "0")}`, id = "s" + hex(s, 24);
    const n = Math.min(per, TASKS - s * per);
    services.push({ id, name, version: 3, created_at: iso(t0), updated_at: iso(t0),
                    spec: { name, mode: "replicated", replicas: n, image: "busybox:latest",
                            args: ["sleep", "1000"] },
                    replicas_running: n, replicas_desired: n, update_status: "completed" });
  }
  for (let k = 0; k < TASKS; k++) {
    const s = services[Math.floor(k / per)], slot = (k % per) + 1, node = nodes[k % NODES];
    tasks.push({ id: "t" + hex(k, 24), name: `${s.name}.${slot}`, service_id: s.id,
                 service_name: s.name, slot, node_id: node.id, node_hostname: node.hostname,
                 image: "busybox:latest", desired_state: "running", state: "running",
                 state_at: iso(t0), message: "started", error: "", pid: 1000 + k, exit_code: 0,
                 created_at: iso(t0), updated_at: iso(t0) });
  }
  const wave = (i, k, a) => a * (0.5 + 0.5 * Math.sin((i * 7 + k) / 9));
  nodes.forEach((n, i) => {
    const history = [];
    for (let k = 0; k < 360; k++)  // one point per 10 s for the last hour
      history.push({ at: now - (360 - k) * 10000, cpu_percent: wave(i, k, 90),
                     mem_used: 4e9 + wave(i, k, 8e9), temp_c: 40 + wave(i, k, 30),
                     load1: wave(i, k, 6) });
    const mine = tasks.filter((t) => t.node_id === n.id).map((t, j) => (
      { id: t.id, cpu_percent: (j * 3.7) % 100, mem_bytes: 2e6 + j * 1e6, name: t.name,
        service_id: t.service_id, service_name: t.service_name }));
    const latest = { at: now, cpu_percent: wave(i, 360, 90), cpus: 8, mem_total: 34359738368,
                     mem_used: 4e9 + wave(i, 360, 8e9), disk_total: 5e11, disk_used: 1e11 + i * 1e9,
                     load1: wave(i, 360, 6), load5: 2.5, load15: 2.1, temp_c: i % 10 ? 55 : null,
                     tasks: mine.map(({ id, cpu_percent, mem_bytes }) => ({ id, cpu_percent, mem_bytes })) };
    stats.push({ node_id: n.id, hostname: n.hostname, status: n.status, role: n.role, latest,
                 history, tasks: mine });
  });
  return { "/v1/nodes": JSON.stringify(nodes), "/v1/services": JSON.stringify(services),
           "/v1/tasks": JSON.stringify(tasks), "/v1/nodes/stats": JSON.stringify(stats) };
}

/* ---- one run: a fresh profile (cold cache), one page load ---- */

// In the page, before its scripts: note when the TASKS-th task box is in the DOM,
// and the next animation frame (it has been laid out and painted by then).
const PROBE = (want) => {
  window.__bench = {};
  const check = () => {
    if (window.__bench.tasks) return;
    if (document.querySelectorAll("#visualizer .task").length >= want) {
      window.__bench.tasks = performance.now();
      requestAnimationFrame(() => setTimeout(() => { window.__bench.painted = performance.now(); }, 0));
    }
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true });
};

async function run(i, daemon, bodies, shot) {
  const profile = mkdtempSync(join(tmpdir(), "shoal-bench-chromium-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1600, height: 900 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on("pageerror", (e) => console.error("page error:", e));
    await page.addInitScript(PROBE, TASKS);
    // synthetic answers for the cluster data; /v1/info and /v1/events go to the daemon
    await page.route((u) => u.pathname in bodies, (route) => route.fulfill(
      { status: 200, contentType: "application/json", body: bodies[new URL(route.request().url()).pathname] }));
    await page.goto(daemon.url);
    await page.waitForFunction(() => window.__bench.painted, null, { timeout: 60000 });
    const r = await page.evaluate(() => ({
      fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? NaN,
      tasks: window.__bench.tasks, painted: window.__bench.painted }));
    const shown = await page.locator("#visualizer .node").count();
    if (shown !== NODES) throw new Error(`run ${i}: ${shown} node columns, want ${NODES}`);
    if (shot) await page.screenshot({ path: shot.replace(/\.png$/, "-visualizer.png") });
    // the Nodes tab: one innerHTML of NODES rows with ~4 sparklines each
    const t0 = await page.evaluate(() => performance.now());
    await page.click('#tabs button[data-view="nodes"]');
    await page.waitForFunction((n) => document.querySelectorAll("#nodes tr.node-row svg.spark").length >= n,
                               NODES, { timeout: 30000 });
    r.nodes = await page.evaluate(() => new Promise((ok) => requestAnimationFrame(
      () => setTimeout(() => ok(performance.now()), 0)))) - t0;
    if (shot) await page.screenshot({ path: shot });
    return r;
  } finally {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

/* ---- main ---- */

const median = (a) => { const s = [...a].sort((x, y) => x - y), m = s.length >> 1;
                        return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const dir = mkdtempSync(join(tmpdir(), "shoal-bench-dash-"));
let daemon;
try {
  daemon = await startDaemon(dir);
  const bodies = synthetic();
  const mb = (Object.values(bodies).reduce((n, b) => n + b.length, 0) / 1e6).toFixed(1);
  console.error(`dashboard ${daemon.base}/ui/, synthetic cluster: ${NODES} nodes, ${SERVICES} ` +
                `services, ${TASKS} tasks (${mb} MB of JSON), ${RUNS} runs, ${CHROMIUM}`);
  const rows = [];
  for (let i = 1; i <= RUNS; i++) {
    const r = await run(i, daemon, bodies, i === RUNS ? process.env.SHOT : "");
    console.error(`run ${i}: fcp ${r.fcp.toFixed(0)} ms, tasks ${r.tasks.toFixed(0)} ms, ` +
                  `painted ${r.painted.toFixed(0)} ms, nodes tab ${r.nodes.toFixed(0)} ms`);
    rows.push(r);
  }
  const line = (label, key) => {
    const v = rows.map((r) => r[key]);
    return `${label.padEnd(44)} ${median(v).toFixed(0).padStart(6)} ${Math.min(...v).toFixed(0).padStart(6)}` +
           ` ${Math.max(...v).toFixed(0).padStart(6)}`;
  };
  console.log(`dashboard, ${NODES} nodes / ${TASKS} tasks / ${SERVICES} services, ${RUNS} runs (ms)` +
              `\n${"".padEnd(44)} ${"median".padStart(6)} ${"min".padStart(6)} ${"max".padStart(6)}`);
  console.log(line("visualizer first-contentful-paint", "fcp"));
  console.log(line(`visualizer: ${TASKS} task boxes in the DOM`, "tasks"));
  console.log(line("visualizer: next frame (laid out, painted)", "painted"));
  console.log(line("nodes tab: click -> rows and sparklines", "nodes"));
  const worst = Math.max(...rows.map((r) => r.painted));
  console.log(`goal: first paint of the full visualizer under ${GOAL_MS} ms: ` +
              `${median(rows.map((r) => r.painted)) < GOAL_MS ? "met" : "NOT met"} (median), worst run ${worst.toFixed(0)} ms`);
  console.log("peer: the Docker swarm visualizer (dockersamples/visualizer) is not available " +
              "offline here, so only shoal's figures are printed.");
} finally {
  if (daemon) {
    daemon.proc.kill("SIGTERM");
    await new Promise((r) => daemon.proc.exitCode !== null ? r() : daemon.proc.once("exit", r));
  }
  rmSync(dir, { recursive: true, force: true });
}
