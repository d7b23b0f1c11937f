// Usage: GPU-hours allocated, used and idle over a window, for the tenant, a cluster, a node pool,
// a department or a project: a stacked chart over time, the top consumers with their efficiency,
// CSV downloads. Everything comes from GET /api/v1/usage (bucket=hour|day for the chart, groupBy
// for the table, filterBy for the unit).

import { get, getCsv } from "../api.js";
import { stackedChart } from "../charts.js";
import { errorLine, figure, h, replace } from "../dom.js";
import { number } from "../format.js";
import { clusterLabel, clusterNames, every } from "../inventory.js";
import { accruedHours, bucketStart } from "../ledger.js";
import { readsTenant } from "../quotas.js";
import { navigate } from "../router.js";

const USAGE = "/api/v1/usage";
const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;
const WINDOWS = [["24h", DAY], ["7d", 7 * DAY], ["30d", 30 * DAY], ["90d", 90 * DAY]];
// Hourly points up to a week, daily beyond (the API gives hours for at most 31 days).
const HOURLY_UP_TO = 7 * DAY;
const TOP = 20;
const HEADERS = ["Allocated GPU-h", "Used GPU-h", "Efficiency", "Idle GPU-h"];

function isoDay(ms) {
  return new Date(ms).toISOString().slice(0, 10);
}

function stepOf(length) {
  return length <= HOURLY_UP_TO ? HOUR : DAY;
}

// The window the route asks for: whole UTC days from..to (inclusive), or a preset ending now.
// A preset starts on the bucket boundary its length ago (the hour, or for daily charts the UTC
// day), which is what the API would round its start to anyway: every bucket drawn and counted
// is whole but the current one (``live``).
export function windowOf(params, now = Date.now()) {
  const chosen = params.get("window") || "7d";
  if (chosen === "custom") {
    const from = Date.parse(`${params.get("from")}T00:00:00Z`);
    const to = Date.parse(`${params.get("to")}T00:00:00Z`) + DAY;
    if (Number.isFinite(from) && Number.isFinite(to) && to > from) {
      return { chosen, start: from, end: to, step: stepOf(to - from), live: false };
    }
    const end = Date.parse(`${isoDay(now)}T00:00:00Z`) + DAY;
    return { chosen, start: end - 14 * DAY, end, step: DAY, live: false };
  }
  const [name, length] = WINDOWS.find(([known]) => known === chosen) || WINDOWS[1];
  const step = stepOf(length);
  return { chosen: name, start: bucketStart(now - length, step), end: now, step, live: true };
}

function spanText(span) {
  const at = (ms) => new Date(ms).toISOString().slice(0, span.step === HOUR ? 16 : 10).replace("T", " ");
  const last = span.step === HOUR ? "the current hour so far" : "today so far";
  return span.live
    ? `From ${at(span.start)} UTC to now (${last}).`
    : `From ${isoDay(span.start)} to ${isoDay(span.end - 1)} (UTC days, both included).`;
}

// What the table may group a unit's usage by, the first by default, and each grouping's title.
const GROUPINGS = {
  tenant: ["project", "cluster"],
  cluster: ["project", "nodepool"],
  nodepool: ["project"],
  department: ["project"],
  project: ["submitter"],
};
const GROUP_TITLES = { project: "Project", cluster: "Cluster", nodepool: "Node pool", submitter: "Submitter" };

// Whose usage: the tenant, "cluster:<uuid>", "nodepool:<cluster uuid>/<pool name>" (two
// clusters' pools of one name are two pools), "department:<id>" or "project:<id>"; ``by`` in the
// address bar chooses the table's grouping among the unit's.
function chosenUnit(text) {
  const colon = text.indexOf(":");
  const [kind, id] = colon < 0 ? [text, ""] : [text.slice(0, colon), text.slice(colon + 1)];
  if (!id) return { kind: "tenant" };
  if (kind === "cluster") return { kind, id, filterBy: `clusterId==${id}` };
  if (kind === "department") return { kind, id, filterBy: `departmentId==${id}` };
  if (kind === "project") return { kind, id, filterBy: `projectId==${id}` };
  const slash = id.indexOf("/");
  if (kind === "nodepool" && slash > 0 && slash < id.length - 1) {
    const [cluster, pool] = [id.slice(0, slash), id.slice(slash + 1)];
    return { kind, id, cluster, pool, filterBy: `clusterId==${cluster},nodepool==${pool}` };
  }
  return { kind: "tenant" };
}

function unitOf(params) {
  const unit = chosenUnit(params.get("unit") || "");
  const groupings = GROUPINGS[unit.kind];
  return { ...unit, groupBy: groupings.includes(params.get("by")) ? params.get("by") : groupings[0] };
}

// The Usage view of a unit ("cluster:<uuid>", ...) as a link, keeping ``params``' window.
export function usageHref(unit, params = new URLSearchParams()) {
  const next = new URLSearchParams(params);
  next.delete("by");
  if (unit) next.set("unit", unit);
  else next.delete("unit");
  return `#/usage?${next}`;
}

// The unit a consumer row stands for, when it is one the view can show.
function rowUnit(group, unit) {
  if (!group.value) return null;
  if (unit.groupBy === "project") return `project:${group.value}`;
  if (unit.groupBy === "cluster") return `cluster:${group.value}`;
  if (unit.groupBy === "nodepool" && unit.kind === "cluster") return `nodepool:${unit.id}/${group.value}`;
  return null;
}

function questions(span, unit) {
  const base = { start: new Date(span.start).toISOString(), end: new Date(span.end).toISOString(), filterBy: unit.filterBy };
  return {
    series: { ...base, bucket: span.step === HOUR ? "hour" : "day" },
    consumers: { ...base, groupBy: unit.groupBy },
  };
}

// Every bucket of the window (which starts on a bucket boundary), zeros where the ledger holds
// nothing. The current bucket, which the ledger has accrued only so far by ``answeredAt``, is
// drawn at the pace of that part, scaled to a whole bucket, rather than as a drop; ``partial``
// lists it. Every other bucket is the API's figure as it is.
function series(values, span, answeredAt) {
  const step = span.step;
  const byStart = new Map(values.map((v) => [Date.parse(v.start), v]));
  const xs = [];
  const partial = [];
  const figures = { used: [], idle: [], rest: [], allocated: [] };
  for (let t = span.start; t < span.end; t += step) {
    const v = byStart.get(t);
    const current = t <= answeredAt && answeredAt < t + step;
    const scale = current ? step / HOUR / accruedHours(t, step, answeredAt) : 1;
    if (current) partial.push(xs.length);
    const allocated = (v?.allocatedGpuHours ?? 0) * scale;
    const used = (v?.usedGpuHours ?? 0) * scale;
    const idle = (v?.idleGpuHours ?? 0) * scale;
    xs.push(t / 1000);
    figures.used.push(used);
    figures.idle.push(idle);
    figures.rest.push(Math.max(allocated - used - idle, 0));
    figures.allocated.push(allocated);
  }
  return { xs, figures, partial };
}

function efficiency(value) {
  return value.allocatedGpuHours > 0 ? value.usedGpuHours / value.allocatedGpuHours : null;
}

function percent(ratio) {
  return ratio === null ? "–" : `${(100 * ratio).toFixed(1)}%`;
}

function totals(values) {
  const sum = (figure) => values.reduce((total, v) => total + v[figure], 0);
  return { allocatedGpuHours: sum("allocatedGpuHours"), usedGpuHours: sum("usedGpuHours"), idleGpuHours: sum("idleGpuHours") };
}

function summary(total) {
  return h("div", { class: "figures", id: "usage-totals" },
    figure("allocated", "Allocated", `${number(total.allocatedGpuHours)} GPU-h`),
    figure("used", "Used", `${number(total.usedGpuHours)} GPU-h`),
    figure("idle", "Idle", `${number(total.idleGpuHours)} GPU-h`),
    figure("efficiency", "Efficiency", percent(efficiency(total))));
}

function consumerRow(value, unit, params) {
  const group = value.groups[0] || {};
  const cell = (field, text) => h("td", { class: "num", dataset: { field } }, text);
  const name = group.name || group.value || "(none)";
  const target = rowUnit(group, unit);
  return h("tr", { dataset: { group: group.value ?? "" } },
    h("td", {}, target ? h("a", { href: usageHref(target, params) }, name) : name),
    cell("allocated", number(value.allocatedGpuHours)),
    cell("used", number(value.usedGpuHours)),
    cell("efficiency", percent(efficiency(value))),
    cell("idle", number(value.idleGpuHours)));
}

function consumersTable(values, unit, params) {
  const top = [...values].sort((a, b) => b.allocatedGpuHours - a.allocatedGpuHours).slice(0, TOP);
  if (!top.length) return h("p", { class: "muted" }, "Nothing was allocated in this window.");
  return h("table", { class: "data", id: "usage-consumers" },
    h("thead", {}, h("tr", {}, h("th", {}, GROUP_TITLES[unit.groupBy]), HEADERS.map((title) => h("th", { class: "num" }, title)))),
    h("tbody", {}, top.map((value) => consumerRow(value, unit, params))));
}

// The table's grouping, when the unit has more than one.
function groupingPicker(params, unit) {
  const groupings = GROUPINGS[unit.kind];
  if (groupings.length < 2) return null;
  return h("div", { class: "ranges", id: "usage-by" }, groupings.map((by) => h("button", {
    type: "button",
    class: by === unit.groupBy ? "active" : "",
    dataset: { by },
    onclick: () => {
      const next = new URLSearchParams(params);
      if (by === groupings[0]) next.delete("by");
      else next.set("by", by);
      navigate("usage", next);
    },
  }, `By ${GROUP_TITLES[by].toLowerCase()}`)));
}

// Saves the API's CSV answer to the same question as a file.
async function download(params, name, status) {
  try {
    const text = await getCsv(USAGE, params);
    const link = h("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: name });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    replace(status);
  } catch (error) {
    replace(status, errorLine(error));
  }
}

// The unit as the address bar names it ("" for the tenant).
function unitValue(unit) {
  return unit.kind === "tenant" ? "" : `${unit.kind}:${unit.id}`;
}

function unitPicker(params, unit, { tenant, clusters, pools, departments, projects }) {
  const current = unitValue(unit);
  const option = (value, text) => h("option", { value, selected: value === current }, text);
  const group = (label, items) => (items.length ? h("optgroup", { label }, items) : null);
  const poolValue = (p) => `nodepool:${p.clusterId}/${p.name}`;
  const poolText = (p) => (clusters.length > 1 ? `${p.clusterName} / ${p.name}` : p.name);
  // A unit the lists leave out (a pool no longer reported) is still the one shown.
  const listed = new Set([
    ...clusters.map((c) => `cluster:${c.uuid}`), ...pools.map(poolValue),
    ...departments.map((d) => `department:${d.id}`), ...projects.map((p) => `project:${p.id}`),
  ]);
  return h("select", {
    id: "usage-unit",
    "aria-label": "Whose usage",
    onchange: (event) => {
      const next = new URLSearchParams(params);
      next.delete("by");
      if (event.target.value) next.set("unit", event.target.value);
      else next.delete("unit");
      navigate("usage", next);
    },
  },
  // A caller reading part of the tenant sees the usage of that part, not the tenant's.
  option("", tenant ? "Whole tenant" : "All this key may see"),
  current && !listed.has(current) ? option(current, unit.pool ?? unit.id) : null,
  group("Clusters", clusters.map((c) => option(`cluster:${c.uuid}`, c.name))),
  group("Node pools", pools.map((p) => option(poolValue(p), poolText(p)))),
  group("Departments", departments.map((d) => option(`department:${d.id}`, d.name))),
  group("Projects", projects.map((p) => option(`project:${p.id}`, p.name))));
}

function windowPicker(params, span) {
  const go = (changes) => {
    const next = new URLSearchParams(params);
    for (const [key, value] of Object.entries(changes)) {
      if (value) next.set(key, value);
      else next.delete(key);
    }
    navigate("usage", next);
  };
  const buttons = [...WINDOWS.map(([name]) => name), "custom"].map((name) => h("button", {
    type: "button",
    class: name === span.chosen ? "active" : "",
    dataset: { window: name },
    onclick: () => go(name === "custom"
      ? { window: name, from: isoDay(span.start), to: isoDay(span.end - 1) }
      : { window: name, from: null, to: null }),
  }, name === "custom" ? "Custom" : name));
  const custom = span.chosen === "custom";
  const from = h("input", { type: "date", name: "from", value: isoDay(span.start), "aria-label": "From (UTC day)" });
  const to = h("input", { type: "date", name: "to", value: isoDay(span.end - 1), "aria-label": "To (UTC day, included)" });
  return h("div", { class: "filters" },
    h("div", { class: "ranges" }, buttons),
    custom ? h("form", {
      class: "filter-row", id: "usage-custom",
      onsubmit: (event) => {
        event.preventDefault();
        go({ window: "custom", from: from.value, to: to.value });
      },
    }, from, "–", to, h("button", { type: "submit" }, "Apply")) : null);
}

// Clusters, node pools, departments and projects the key may list (a project viewer may list
// none of them).
async function units() {
  const list = (path, key) => every(path, key).catch(() => []);
  const [tenant, names, pools, departments, projects] = await Promise.all([
    readsTenant().catch(() => false),
    clusterNames().catch(() => new Map()),
    list("/api/v1/node-pools", "nodepools"),
    list("/api/v1/org-unit/departments", "departments"),
    list("/api/v1/org-unit/projects", "projects"),
  ]);
  const byName = (a, b) => a.name.localeCompare(b.name);
  const clusters = [...names].map(([uuid, name]) => ({ uuid, name })).sort(byName);
  pools.sort((a, b) => a.clusterName.localeCompare(b.clusterName) || byName(a, b));
  return {
    tenant, names, clusters, pools, departments: departments.sort(byName), projects: projects.sort(byName),
  };
}

// What the page calls the unit, for its heading and file names.
function unitTitle(unit, names) {
  if (unit.kind === "cluster") return `cluster ${clusterLabel(names, unit.id)}`;
  if (unit.kind === "nodepool") return `node pool ${unit.pool} of ${clusterLabel(names, unit.cluster)}`;
  return unit.kind;
}

// A file name's part for the unit: letters, digits, dots and dashes only.
function fileLabel(unit, names) {
  const text = unit.kind === "tenant" ? "tenant"
    : unit.kind === "cluster" || unit.kind === "nodepool" ? unitTitle(unit, names) : `${unit.kind}-${unit.id}`;
  return text.replace(/[^A-Za-z0-9.-]+/g, "-");
}

export async function renderUsage(view, params, isCurrent) {
  replace(view, h("h1", {}, "Usage"), h("p", { class: "muted" }, "Loading…"));
  const span = windowOf(params);
  const unit = unitOf(params);
  const asked = questions(span, unit);
  let answeredAt;
  const [listed, over, byConsumer] = await Promise.all([
    units(),
    get(USAGE, asked.series).then((r) => {
      answeredAt = Date.now();
      return r.body.values;
    }),
    get(USAGE, asked.consumers).then((r) => r.body.values),
  ]);
  if (!isCurrent()) return;
  const chart = h("div", { class: "chart", id: "usage-chart" });
  const status = h("div", { id: "usage-download-status" });
  const label = `${fileLabel(unit, listed.names)}-${isoDay(span.start)}-${isoDay(span.end - 1)}`;
  replace(view,
    h("h1", {}, "Usage"),
    h("p", { class: "muted" },
      "GPU-hours held by workloads: used is allocation weighted by measured GPU utilisation, idle is ",
      "allocation while the GPU was idle; the rest of the allocation was held but neither. Efficiency is used / allocated."),
    h("section", { class: "panel", id: "usage", dataset: { start: asked.series.start, end: asked.series.end, bucket: asked.series.bucket, unit: unitValue(unit) || "tenant" } },
      h("div", { class: "filters" }, unitPicker(params, unit, listed), windowPicker(params, span)),
      h("p", { class: "muted", id: "usage-window" }, spanText(span)),
      summary(totals(over)),
      chart),
    h("section", { class: "panel" },
      h("div", { class: "filters" },
        h("h2", {}, unit.kind === "tenant" && !listed.tenant
          ? `Top consumers by ${GROUP_TITLES[unit.groupBy].toLowerCase()}`
          : `Top consumers of the ${unitTitle(unit, listed.names)} by ${GROUP_TITLES[unit.groupBy].toLowerCase()}`),
        groupingPicker(params, unit),
        h("button", { type: "button", id: "usage-csv", onclick: () => download(asked.consumers, `usage-${label}.csv`, status) }, "Download CSV"),
        h("button", { type: "button", id: "usage-series-csv", onclick: () => download(asked.series, `usage-${label}-by-${asked.series.bucket}.csv`, status) }, `Download CSV by ${asked.series.bucket}`)),
      status,
      consumersTable(byConsumer, unit, params)));
  const { xs, figures, partial } = series(over, span, answeredAt);
  chart.dataset.partial = partial.join(",");
  if (partial.length) {
    const bucket = asked.series.bucket === "hour" ? "hour" : "day (UTC)";
    chart.after(h("p", { class: "muted", id: "usage-partial" },
      `The current ${bucket} is drawn at the pace of its part so far, as a whole ${bucket} would be; `,
      "the figures above count only what it holds so far."));
  }
  stackedChart(chart, {
    title: `GPU-hours per ${asked.series.bucket}`,
    unit: "GPU-h",
    xs,
    layers: [
      { label: "Used", values: figures.used, stroke: "#16a34a", fill: "#16a34a" },
      { label: "Idle", values: figures.idle, stroke: "#ea580c", fill: "#fdba74" },
      { label: "Rest of allocated", values: figures.rest, stroke: "#2f6fed", fill: "#dbe5fb" },
    ],
  });
}
