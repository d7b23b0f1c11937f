// Usage: GPU-hours allocated, used and idle over a window, for the tenant, a department or a
// project: a stacked chart over time, the top consumers with their efficiency, CSV downloads.
// Everything comes from GET /api/v1/usage (bucket=hour|day for the chart, groupBy for the table).

import { get, getCsv } from "../api.js";
import { stackedChart } from "../charts.js";
import { errorLine, figure, h, replace } from "../dom.js";
import { number } from "../format.js";
import { every } from "../inventory.js";
import { accruedHours, bucketStart } from "../ledger.js";
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

// Whose usage: the tenant, "department:<id>" or "project:<id>"; the table groups one level down.
function unitOf(params) {
  const [kind, id] = (params.get("unit") || "").split(":");
  if (kind === "department" && id) return { kind, id, filterBy: `departmentId==${id}`, groupBy: "project" };
  if (kind === "project" && id) return { kind, id, filterBy: `projectId==${id}`, groupBy: "submitter" };
  return { kind: "tenant", groupBy: "project" };
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

function consumerRow(value) {
  const group = value.groups[0] || {};
  const cell = (field, text) => h("td", { class: "num", dataset: { field } }, text);
  return h("tr", { dataset: { group: group.value ?? "" } },
    h("td", {}, group.name || group.value || "(none)"),
    cell("allocated", number(value.allocatedGpuHours)),
    cell("used", number(value.usedGpuHours)),
    cell("efficiency", percent(efficiency(value))),
    cell("idle", number(value.idleGpuHours)));
}

function consumersTable(values, unit) {
  const top = [...values].sort((a, b) => b.allocatedGpuHours - a.allocatedGpuHours).slice(0, TOP);
  if (!top.length) return h("p", { class: "muted" }, "Nothing was allocated in this window.");
  const first = unit.groupBy === "submitter" ? "Submitter" : "Project";
  return h("table", { class: "data", id: "usage-consumers" },
    h("thead", {}, h("tr", {}, h("th", {}, first), HEADERS.map((title) => h("th", { class: "num" }, title)))),
    h("tbody", {}, top.map(consumerRow)));
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

function unitPicker(params, departments, projects) {
  const current = params.get("unit") || "";
  const option = (value, text) => h("option", { value, selected: value === current }, text);
  return h("select", {
    id: "usage-unit",
    "aria-label": "Whose usage",
    onchange: (event) => {
      const next = new URLSearchParams(params);
      if (event.target.value) next.set("unit", event.target.value);
      else next.delete("unit");
      navigate("usage", next);
    },
  },
  option("", "Whole tenant"),
  departments.length ? h("optgroup", { label: "Departments" }, departments.map((d) => option(`department:${d.id}`, d.name))) : null,
  projects.length ? h("optgroup", { label: "Projects" }, projects.map((p) => option(`project:${p.id}`, p.name))) : null);
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

// Departments and projects the key may list (a project viewer may list none of them).
async function units() {
  const list = (path, key) => every(path, key).catch(() => []);
  const [departments, projects] = await Promise.all([
    list("/api/v1/org-unit/departments", "departments"),
    list("/api/v1/org-unit/projects", "projects"),
  ]);
  const byName = (a, b) => a.name.localeCompare(b.name);
  return { departments: departments.sort(byName), projects: projects.sort(byName) };
}

export async function renderUsage(view, params, isCurrent) {
  replace(view, h("h1", {}, "Usage"), h("p", { class: "muted" }, "Loading…"));
  const span = windowOf(params);
  const unit = unitOf(params);
  const asked = questions(span, unit);
  let answeredAt;
  const [{ departments, projects }, over, byConsumer] = await Promise.all([
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
  const label = `${unit.kind === "tenant" ? "tenant" : `${unit.kind}-${unit.id}`}-${isoDay(span.start)}-${isoDay(span.end - 1)}`;
  replace(view,
    h("h1", {}, "Usage"),
    h("p", { class: "muted" },
      "GPU-hours held by workloads: used is allocation weighted by measured GPU utilisation, idle is ",
      "allocation while the GPU was idle; the rest of the allocation was held but neither. Efficiency is used / allocated."),
    h("section", { class: "panel", id: "usage", dataset: { start: asked.series.start, end: asked.series.end, bucket: asked.series.bucket } },
      h("div", { class: "filters" }, unitPicker(params, departments, projects), windowPicker(params, span)),
      h("p", { class: "muted", id: "usage-window" }, spanText(span)),
      summary(totals(over)),
      chart),
    h("section", { class: "panel" },
      h("div", { class: "filters" },
        h("h2", {}, `Top consumers by ${unit.groupBy}`),
        h("button", { type: "button", id: "usage-csv", onclick: () => download(asked.consumers, `usage-${label}.csv`, status) }, "Download CSV"),
        h("button", { type: "button", id: "usage-series-csv", onclick: () => download(asked.series, `usage-${label}-by-${asked.series.bucket}.csv`, status) }, `Download CSV by ${asked.series.bucket}`)),
      status,
      consumersTable(byConsumer, unit)));
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
