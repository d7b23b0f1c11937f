// The overview an administrator opens first: GPUs total / allocated / idle / free now and over
// 24 hours, how well allocated GPUs are used, the pending queue, the projects holding and idling
// most, and the clusters. Every number links to the view behind it; the page refreshes itself.

import { get } from "../api.js";
import { barChart } from "../charts.js";
import { errorLine, h, replace } from "../dom.js";
import { duration, number, when } from "../format.js";
import { NODE_TELEMETRY, SCHEDULABLE_NOTE, every, grouped, nodeKey, perNode, schedulableFree, total } from "../inventory.js";
import { drawGpuHistory, gpuHistory } from "./overview-history.js";
import { nodesHref } from "./nodes.js";
import { requestedGpus } from "./workloads.js";

const TELEMETRY = "/api/v1/workloads/telemetry";
const GPU_TYPES = ["TOTAL_GPUS", "ALLOCATED_GPUS", "IDLE_ALLOCATED_GPUS", "FREE_GPUS"];
const REFRESH_KEY = "gpufleet.overviewRefreshSeconds";
const REFRESH_CHOICES = [["Off", 0], ["10 s", 10], ["30 s", 30], ["1 min", 60], ["5 min", 300]];
const DEFAULT_REFRESH = 30;
const QUEUE_LENGTH = 10;
const TOP = 10;
const UTILISATION_BUCKETS = [[0, 20], [20, 40], [40, 60], [60, 80], [80, 101]];

// The workloads table with these filters, sorted.
export function workloadsLink(filters, sort, order = "desc") {
  const params = new URLSearchParams();
  for (const filter of filters) params.append("f", filter);
  if (sort) {
    params.set("sort", sort);
    params.set("order", order);
  }
  return `#/workloads?${params}`;
}

function link(href, text) {
  return h("a", { href }, text);
}

function section(id, title, subtitle) {
  const body = h("div", { id }, h("p", { class: "muted" }, "Loading…"));
  const node = h("section", { class: "panel" }, h("h2", {}, title), subtitle ? h("p", { class: "muted" }, subtitle) : null, body);
  return { node, body };
}

function stat(id, title, href, note) {
  const value = h("a", { href, id, class: "stat-value" }, "…");
  return {
    node: h("section", { class: "panel" }, h("h2", {}, link(href, title)), h("div", { class: "stat" }, value),
      note ? h("div", { class: "muted stat-note" }, note) : null),
    value,
  };
}

function round(value) {
  return Math.round(value * 10) / 10;
}

// Whether the caller reads whole clusters: a rule on the tenant, or on each cluster it sees
// (what cluster metrics ask for). Only then are the clusters' figures its own; anyone else is
// shown its projects' figures, so nothing on the page mixes the two, and is never sent to the
// cluster-wide paths that would refuse it.
async function readsWholeClusters(clusters) {
  const { body } = await get("/api/v1/authorization/me/access-rules", { limit: 500 });
  const rules = body.accessRules?.accessRules ?? [];
  if (rules.some((r) => r.scopeType === "tenant")) return true;
  const ruled = (c) => rules.some((r) => r.scopeType === "cluster" && (r.scopeId === c.uuid || r.clusterId === c.uuid));
  return clusters.length > 0 && clusters.every(ruled);
}

// The workloads holding idle GPUs now (the idle-GPU rule, applied every minute): the same
// question as the "Idle" links, so a figure drawn from them adds up to what its link lists.
function idleWorkloads() {
  return every("/api/v1/workloads", "workloads", { filterBy: "idleAllocatedGpus>=0.01" });
}

function sumBy(workloads, key) {
  const sums = new Map();
  for (const w of workloads) sums.set(w[key], (sums.get(w[key]) ?? 0) + Number(w.idleAllocatedGpus ?? 0));
  return sums;
}

// The free GPUs new work can be placed on, by cluster: as the Capacity and Nodes views count
// them, on the nodes that are ready and not cordoned.
async function schedulableFreeByCluster() {
  const [nodes, { ALLOCATED_GPUS: allocated }] = await Promise.all([every("/api/v1/nodes", "nodes"), perNode(["ALLOCATED_GPUS"])]);
  const byCluster = Map.groupBy(nodes, (n) => n.clusterUuid);
  return new Map([...byCluster].map(([cluster, mine]) => [cluster, schedulableFree(mine, (n) => allocated.get(nodeKey(n)) ?? 0)]));
}

// Figures asked for once per refresh, shared by the parts that show them, by cluster. For a
// caller reading whole clusters, the nodes' telemetry and the schedulable free GPUs; for anyone
// else, its projects' workloads (allocation from the workloads telemetry, idle GPUs from the
// idle workloads).
async function gpuFigures(whole, idle) {
  if (!whole) {
    const [allocated, workloads] = await Promise.all([grouped(TELEMETRY, "GPU_ALLOCATION", ["ClusterId"]), idle]);
    return { ALLOCATED_GPUS: allocated, IDLE_ALLOCATED_GPUS: sumBy(workloads, "clusterId") };
  }
  const [schedulable, ...maps] = await Promise.all([
    schedulableFreeByCluster(),
    ...GPU_TYPES.map((type) => grouped(NODE_TELEMETRY, type, ["ClusterId"])),
  ]);
  return { ...Object.fromEntries(GPU_TYPES.map((type, i) => [type, maps[i]])), SCHEDULABLE_FREE_GPUS: schedulable };
}

// Usage of the last hour and the current one, per project and submitter: the finest grouping
// the usage API offers, from which both the utilisation distribution and the idle projects come.
async function recentUsage(now) {
  const start = new Date(now.getTime() - 3600_000);
  start.setUTCMinutes(0, 0, 0);
  const { body } = await get("/api/v1/usage", { start: start.toISOString(), end: now.toISOString(), groupBy: "project,submitter" });
  const hours = Math.max((now - start) / 3600_000, 1 / 60);
  return body.values.map((v) => ({
    project: v.groups[0]?.name ?? v.groups[0]?.value ?? "",
    allocated: v.allocatedGpuHours / hours,
    used: v.usedGpuHours / hours,
    idle: v.idleGpuHours / hours,
    measured: v.usedGpuHours + v.idleGpuHours > 0,
    hours,
  }));
}

function utilisationRows(usage) {
  const rows = UTILISATION_BUCKETS.map(([low, high]) => ({
    label: `${low}–${Math.min(high, 100)} %`, value: 0, low, high,
  }));
  let unmeasured = 0;
  for (const group of usage) {
    if (!group.measured || group.allocated <= 0) {
      unmeasured += group.allocated;
      continue;
    }
    const percent = (100 * group.used) / group.allocated;
    const row = rows.find((r) => percent >= r.low && percent < r.high) ?? rows[rows.length - 1];
    row.value += group.allocated;
  }
  const shown = rows.map(({ label, value }) => ({ label, value: round(value) }));
  if (unmeasured > 0) shown.push({ label: "not measured", value: round(unmeasured) });
  return shown;
}

// Idle GPUs now by project, from the workloads each bar links to.
function idleProjectRows(workloads) {
  return [...sumBy(workloads, "projectName")].filter(([, value]) => value >= 0.05)
    .sort((a, b) => b[1] - a[1]).slice(0, TOP)
    .map(([project, value]) => ({
      label: project, value: round(value),
      href: workloadsLink([`projectName==${project}`, "idleAllocatedGpus>=0.01"], "idleAllocatedGpus"),
    }));
}

// The pending workloads, longest current wait first: the wait since the workload's phase last
// became Pending (phaseUpdatedAt), as the buckets of "Pending workloads by time pending" count
// it, not totalPendingTimeSeconds, which adds every earlier stretch of a workload that ran, was
// preempted and waits again (the workload page shows that total).
const LONGEST_WAITING = ["phaseUpdatedAt", "asc"];

export function pendingLink(filters) {
  return workloadsLink([...filters, "phase==Pending"], ...LONGEST_WAITING);
}

function waitedSeconds(workload, now) {
  return (now.getTime() - Date.parse(workload.phaseUpdatedAt)) / 1000;
}

function pendingTable(workloads, now) {
  if (!workloads.length) return h("p", { class: "muted" }, "Nothing is pending.");
  return h("table", { class: "data", id: "pending-table" },
    h("thead", {}, h("tr", {}, ["Workload", "Project", "GPUs", "Waiting", "Reason"].map((t, i) =>
      h("th", { class: i === 2 || i === 3 ? "num" : "" }, t)))),
    h("tbody", {}, workloads.map((w) => h("tr", { "data-id": w.id },
      h("td", {}, link(`#/workloads/${encodeURIComponent(w.id)}`, w.name)),
      h("td", {}, link(pendingLink([`projectName==${w.projectName}`]), w.projectName)),
      h("td", { class: "num" }, requestedGpus(w)),
      h("td", { class: "num", dataset: { field: "waiting" }, title: `Pending since ${when(w.phaseUpdatedAt)}` }, duration(waitedSeconds(w, now))),
      h("td", { class: "wrap" }, w.phaseReason ? h("strong", {}, `${w.phaseReason}: `) : null, w.phaseMessage ?? "")))));
}

function stateBadge(cluster) {
  const state = cluster.status?.state ?? "Unknown";
  return h("span", { class: `badge state-${state}`, "data-state": state }, state);
}

// A caller that reads only some projects sees their allocation and idle GPUs per cluster,
// without the clusters' totals and free GPUs, which are not its projects' figures.
function clustersTable(clusters, figures, workloadCounts, whole) {
  if (!clusters.length) return h("p", { class: "muted" }, "No clusters.");
  const figure = (type, uuid) => number(round(figures[type].get(uuid) ?? 0));
  const columns = [
    ["Cluster", false, (c) => link("#/capacity", c.name)],
    ["Status", false, (c) => stateBadge(c)],
    whole && ["GPUs", true, (c) => link("#/capacity", figure("TOTAL_GPUS", c.uuid))],
    ["Allocated", true, (c, mine) => link(mine(["allocatedGPU>=0.01"]), figure("ALLOCATED_GPUS", c.uuid))],
    ["Idle", true, (c, mine) => link(mine(["idleAllocatedGpus>=0.01"]), figure("IDLE_ALLOCATED_GPUS", c.uuid))],
    whole && ["Schedulable free", true, (c) => link(nodesHref({ cluster: c.uuid, status: "schedulable" }),
      figure("SCHEDULABLE_FREE_GPUS", c.uuid)), SCHEDULABLE_NOTE],
    ["Workloads", true, (c, mine) => link(mine([]), number(workloadCounts.get(c.uuid) ?? 0))],
    ["Last seen", false, (c) => (c.lastLiveness ? when(c.lastLiveness) : "never")],
  ].filter(Boolean);
  return h("table", { class: "data", id: "clusters-table" },
    h("thead", {}, h("tr", {}, columns.map(([title, num, , note]) => h("th", { class: num ? "num" : "", title: note }, title)))),
    h("tbody", {}, clusters.map((c) => {
      const mine = (filters) => workloadsLink([`clusterId==${c.uuid}`, ...filters], "allocatedGPU");
      return h("tr", { "data-cluster": c.uuid },
        columns.map(([, num, cell]) => h("td", { class: num ? "num" : "" }, cell(c, mine))));
    })));
}

// What a demo server's simulator is doing: null when the server runs no demo (404) or the
// caller may not ask.
async function demoStatus() {
  try {
    return (await get("/api/v1/demo/status")).body;
  } catch {
    return null;
  }
}

function seedingNotice(notice, status) {
  // "starting" and "history": the past is still being reported; "failed": it never will be.
  const seeding = ["starting", "history", "failed"].includes(status?.state);
  notice.hidden = !seeding;
  if (!seeding) return;
  const from = Date.parse(status.historyFrom);
  const reached = Date.parse(status.simulatedTime);
  const share = from && reached ? Math.round((100 * (reached - from)) / Math.max(Date.now() - from, 1)) : 0;
  notice.dataset.state = status.state;
  notice.textContent = status.state === "failed"
    ? `The demo simulator stopped: ${status.error ?? "unknown error"}.`
    : `The demo is still simulating its last 24 hours (${Math.min(share, 100)} % done, up to ` +
      `${reached ? new Date(reached).toLocaleTimeString() : "the start"}): charts and figures of the ` +
      "last day fill in as it goes.";
}

function refreshSetting(onChange) {
  const stored = Number(localStorage.getItem(REFRESH_KEY) ?? DEFAULT_REFRESH);
  const seconds = REFRESH_CHOICES.some(([, s]) => s === stored) ? stored : DEFAULT_REFRESH;
  const select = h("select", {
    id: "auto-refresh", "aria-label": "Refresh automatically",
    onchange: (event) => {
      localStorage.setItem(REFRESH_KEY, event.target.value);
      onChange(Number(event.target.value));
    },
  }, REFRESH_CHOICES.map(([label, s]) => h("option", { value: s, selected: s === seconds }, label)));
  return { node: h("label", { class: "muted" }, "Refresh ", select), seconds };
}

export async function renderOverview(view, isCurrent) {
  const freeInAll = h("span", { id: "gpus-free-all" }, "…");
  const gpuStats = {
    total: stat("gpus-total", "GPUs", "#/capacity", "in all clusters"),
    allocated: stat("gpus-allocated", "Allocated", workloadsLink(["allocatedGPU>=0.01"], "allocatedGPU"), "held by workloads"),
    idle: stat("gpus-idle", "Idle", workloadsLink(["idleAllocatedGpus>=0.01"], "idleAllocatedGpus"), "allocated, not used"),
    free: stat("gpus-free", "Schedulable free", nodesHref({ status: "schedulable" }),
      ["not allocated, on nodes that take work; ", freeInAll, " free in all, cordoned and not ready nodes too"]),
  };
  const workloadStats = {
    all: stat("workloads-total", "Workloads", "#/workloads"),
    running: stat("workloads-running", "Running", workloadsLink(["phase==Running"], "allocatedGPU")),
    pending: stat("workloads-pending", "Pending", pendingLink([])),
  };
  const history = section("gpu-history", "GPUs over the last 24 hours");
  history.body.classList.add("chart");
  const utilisation = section("utilisation", "Utilisation of allocated GPUs",
    "Allocated GPUs (mean since the last full hour began) by the measured utilisation of their project and submitter.");
  const queue = section("pending-queue", "Pending queue",
    "The longest waits since the workloads last became pending, with why they wait.");
  const allocatedProjects = section("top-allocated", "Projects by allocated GPUs");
  const idleProjects = section("top-idle", "Projects by idle GPUs",
    "Allocated GPUs idle now by the idle-GPU rule; each bar lists its idle workloads.");
  const clusters = section("clusters", "Clusters");
  const phases = section("by-phase", "Workloads by phase");
  const pendingTimes = section("pending-time", "Pending workloads by time pending",
    "Time since each last became pending, as the queue counts it.");
  const updated = h("span", { class: "muted", id: "updated", "data-refreshes": "0" });
  const notice = h("p", { class: "notice", id: "seeding", hidden: true });
  const scopeNote = h("p", { class: "muted", id: "scope-note", hidden: true },
    "Your access rules cover projects, not whole clusters: the GPU figures and the chart are your projects' ",
    "workloads. The Capacity view shows the clusters' nodes.");
  // Asked once per visit: a caller's rules do not change while it watches.
  let whole;

  let timer = null;
  let generation = 0;
  let running = false;
  let interval = 0;
  const schedule = () => {
    clearTimeout(timer);
    if (interval > 0) timer = setTimeout(tick, interval * 1000);
  };
  const setting = refreshSetting((seconds) => {
    interval = seconds;
    schedule();
  });
  interval = setting.seconds;

  replace(view,
    h("div", { class: "toolbar" }, h("h1", {}, "Overview"), updated, setting.node),
    notice,
    scopeNote,
    h("div", { class: "stats", id: "gpu-stats" }, Object.values(gpuStats).map((s) => s.node)),
    history.node,
    h("div", { class: "stats", id: "workload-stats" }, Object.values(workloadStats).map((s) => s.node)),
    clusters.node,
    h("div", { class: "grid" }, allocatedProjects.node, idleProjects.node, utilisation.node),
    queue.node,
    h("div", { class: "grid" }, phases.node, pendingTimes.node));

  // One refresh: every part asks again and redraws in place; an answer from an older refresh
  // than the latest is dropped.
  async function refresh() {
    const mine = ++generation;
    const fresh = () => isCurrent() && mine === generation;
    const now = new Date();
    const part = async (target, load) => {
      try {
        const content = await load();
        if (fresh() && content !== undefined) replace(target, content);
      } catch (error) {
        if (fresh()) replace(target, errorLine(error));
      }
    };
    const bars = (target, load, options) => part(target, async () => {
      const rows = await load();
      if (fresh()) barChart(target, rows, options);
    });
    const clusterList = get("/api/v1/clusters").then((r) => r.body);
    whole ??= clusterList.then(readsWholeClusters).catch((error) => {
      whole = undefined;
      throw error;
    });
    const scope = whole;
    const idle = idleWorkloads();
    const figures = scope.then((all) => gpuFigures(all, idle));
    const usage = recentUsage(now);
    scope.then((all) => {
      if (!fresh()) return;
      scopeNote.hidden = all;
      gpuStats.total.node.hidden = !all;
      gpuStats.free.node.hidden = !all;
    }, () => {});
    // A figure over every cluster, or a dash when the caller's scope has none of that type.
    const sum = async (type) => {
      const byCluster = (await figures)[type];
      return byCluster ? number(round(total(byCluster))) : "–";
    };
    const telemetry = (type, groupBy) => get(TELEMETRY, { telemetryType: type, groupBy }).then((r) => r.body);
    const count = (filter) => get("/api/v1/workloads/count", { filterBy: filter }).then((r) => number(r.body.count));
    await Promise.all([
      demoStatus().then((status) => fresh() && seedingNotice(notice, status)),
      ...Object.entries({
        total: "TOTAL_GPUS", allocated: "ALLOCATED_GPUS", idle: "IDLE_ALLOCATED_GPUS", free: "SCHEDULABLE_FREE_GPUS",
      }).map(([name, type]) => part(gpuStats[name].value, () => sum(type))),
      part(freeInAll, () => sum("FREE_GPUS")),
      part(workloadStats.all.value, () => count()),
      part(workloadStats.running.value, () => count("phase==Running")),
      part(workloadStats.pending.value, () => count("phase==Pending")),
      part(history.body, async () => {
        const all = await scope;
        const rows = await gpuHistory(await clusterList, await figures, now, all);
        if (fresh()) drawGpuHistory(history.body, rows, all);
      }),
      bars(utilisation.body, async () => utilisationRows(await usage), { unit: "GPUs", empty: "No GPUs allocated in this hour." }),
      bars(idleProjects.body, async () => idleProjectRows(await idle), { unit: "GPUs", empty: "No project holds idle GPUs." }),
      bars(allocatedProjects.body, async () => (await telemetry("GPU_ALLOCATION", "ProjectId")).values
        .map((item) => ({ label: item.groups?.[0]?.name ?? item.groups?.[0]?.value, value: round(Number(item.value)) }))
        .filter((row) => row.value > 0).sort((a, b) => b.value - a.value).slice(0, TOP)
        .map((row) => ({ ...row, href: workloadsLink([`projectName==${row.label}`, "allocatedGPU>=0.01"], "allocatedGPU") })),
      { unit: "GPUs", empty: "No GPUs allocated." }),
      part(queue.body, async () => {
        const { body } = await get("/api/v1/workloads", {
          filterBy: "phase==Pending", sortBy: LONGEST_WAITING[0], sortOrder: LONGEST_WAITING[1], limit: QUEUE_LENGTH,
        });
        return [pendingTable(body.workloads, now),
          h("p", {}, link(pendingLink([]), "All pending workloads, longest waiting first"))];
      }),
      part(clusters.body, async () => {
        const counts = await telemetry("WORKLOADS_COUNT", "ClusterId");
        const byCluster = new Map(counts.values.map((v) => [v.groups?.[0]?.value, Number(v.value)]));
        return clustersTable(await clusterList, await figures, byCluster, await scope);
      }),
      bars(phases.body, async () => (await telemetry("WORKLOADS_COUNT", "Phase")).values
        .map((item) => ({ label: item.groups?.[0]?.value ?? "", value: Number(item.value) }))
        .sort((a, b) => b.value - a.value)
        .map((row) => ({ ...row, phase: row.label, href: workloadsLink([`phase==${row.label}`]) })),
      { empty: "No workloads." }),
      bars(pendingTimes.body, async () => (await telemetry("PENDING_TIME_DISTRIBUTION")).values
        .map((item) => ({ label: item.groups?.[0]?.value ?? "", value: Number(item.value) })),
      { empty: "No pending workloads." }),
    ]);
    if (!fresh()) return;
    updated.textContent = `Updated ${now.toLocaleTimeString()}`;
    updated.dataset.refreshes = String(Number(updated.dataset.refreshes) + 1);
    updated.dataset.at = now.toISOString();
  }

  async function tick() {
    if (!isCurrent()) return;
    if (!running) {
      running = true;
      try {
        await refresh();
      } finally {
        running = false;
      }
    }
    if (isCurrent()) schedule();
  }
  await tick();
}
