// The overview: counts and telemetry (phases, GPU allocation, pending-time distribution).

import { get } from "../api.js";
import { barChart } from "../charts.js";
import { errorLine, h, replace } from "../dom.js";
import { number } from "../format.js";

const TELEMETRY = "/api/v1/workloads/telemetry";

function label(item) {
  const group = (item.groups || [])[0] || {};
  return group.name || group.value || "(none)";
}

function rowsOf(body, { sortByValue = false, limit = 15 } = {}) {
  const rows = (body.values || []).map((item) => ({ label: label(item), value: Number(item.value) }));
  if (sortByValue) rows.sort((a, b) => b.value - a.value);
  return rows.slice(0, limit);
}

function panel(id, title, subtitle) {
  const chart = h("div", { class: "chart-bars", id }, h("p", { class: "muted" }, "Loading…"));
  return { node: h("section", { class: "panel" }, h("h2", {}, title), subtitle ? h("p", { class: "muted" }, subtitle) : null, chart), chart };
}

async function fill(chart, load, isCurrent) {
  try {
    const rows = await load();
    if (isCurrent()) barChart(chart, rows.rows, rows.options);
  } catch (error) {
    if (isCurrent()) replace(chart, errorLine(error));
  }
}

function stat(title, filter) {
  const value = h("div", { class: "stat" }, "…");
  const href = filter ? `#/workloads?f=${encodeURIComponent(filter)}` : "#/workloads";
  return { node: h("section", { class: "panel" }, h("h2", {}, h("a", { href }, title)), value), value, filter };
}

export async function renderOverview(view, isCurrent) {
  const stats = [stat("Workloads"), stat("Running", "phase==Running"), stat("Pending", "phase==Pending")];
  const phases = panel("by-phase", "Workloads by phase");
  const departments = panel("gpu-by-department", "Allocated GPUs by department");
  const projects = panel("gpu-by-project", "Allocated GPUs by project", "The 15 projects with the most.");
  const pending = panel("pending-time", "Pending workloads by time pending");
  replace(view,
    h("h1", {}, "Overview"),
    h("div", { class: "grid" }, stats.map((s) => s.node)),
    h("div", { class: "grid" }, phases.node, pending.node, departments.node, projects.node));

  const counts = stats.map(async (s) => {
    try {
      const { body } = await get("/api/v1/workloads/count", { filterBy: s.filter });
      if (isCurrent()) s.value.textContent = number(body.count);
    } catch (error) {
      if (isCurrent()) replace(s.value, errorLine(error));
    }
  });
  const telemetry = (type, groupBy) => get(TELEMETRY, { telemetryType: type, groupBy }).then((r) => r.body);
  await Promise.all([
    ...counts,
    fill(phases.chart, async () => ({
      rows: rowsOf(await telemetry("WORKLOADS_COUNT", "Phase"), { sortByValue: true }).map((row) => ({
        ...row, href: `#/workloads?f=${encodeURIComponent(`phase==${row.label}`)}`,
      })),
      options: { empty: "No workloads." },
    }), isCurrent),
    fill(departments.chart, async () => ({
      rows: rowsOf(await telemetry("GPU_ALLOCATION", "DepartmentId"), { sortByValue: true }),
      options: { unit: "GPUs", empty: "No GPUs allocated." },
    }), isCurrent),
    fill(projects.chart, async () => ({
      rows: rowsOf(await telemetry("GPU_ALLOCATION", "ProjectId"), { sortByValue: true }),
      options: { unit: "GPUs", empty: "No GPUs allocated." },
    }), isCurrent),
    fill(pending.chart, async () => ({
      rows: rowsOf(await telemetry("PENDING_TIME_DISTRIBUTION")),
      options: { empty: "No pending workloads." },
    }), isCurrent),
  ]);
}
