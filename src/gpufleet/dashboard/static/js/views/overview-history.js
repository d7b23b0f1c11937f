// The overview's GPUs over the last 24 hours, stacked: idle allocated GPUs at the bottom, the
// allocated GPUs that are not idle above them (together the allocation), the free GPUs on top,
// so the top edge is the total. The middle band is allocation, not use: a GPU that is not idle
// may still be barely used (the Usage view's "used" weighs GPU-hours by utilisation).
//
// One point per hour. Total and allocated GPUs are the hour's mean of the clusters' history
// (the inventory samples behind `/clusters/{id}/metrics`, TOTAL_GPU and ALLOCATED_GPU, which
// the server records every minute and the living demo records for the past it simulates). Idle
// GPUs are the usage ledger's (`bucket=hour`: the idle GPU-hours of an hour are its mean idle
// GPUs), by the same idle-GPU rule as the figure "Idle" above the chart. An hour without
// cluster history (before the server sampled) takes its allocation from the ledger and the
// total now. The right edge is now, the figures above the chart.
//
// A caller that does not read whole clusters (no rule on the tenant or its clusters) is shown
// its projects alone: every hour from the ledger (which is scoped to them), now from their
// workloads, and no free band, since the clusters' totals are not its projects' figures.

import { get } from "../api.js";
import { stackedChart } from "../charts.js";
import { total } from "../inventory.js";
import { accruedHours } from "../ledger.js";

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const BANDS = {
  idle: { label: "Idle", stroke: "#d97706", fill: "#fcd9a0" },
  busy: { label: "Allocated, not idle", stroke: "#2f6fed", fill: "#bcd0fb" },
  free: { label: "Free", stroke: "#98a2b3", fill: "#e4e7ec" },
};

function hourOf(ms) {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

// Map hour start (ms) -> {allocated, idle} mean GPUs (the current hour as far as it went).
// ``start`` is on the hour, so every hour but the current one is whole.
async function ledgerByHour(start, now) {
  const { body } = await get("/api/v1/usage", {
    start: new Date(start).toISOString(), end: new Date(now).toISOString(), bucket: "hour",
  });
  const answeredAt = Date.now();
  const hours = new Map();
  for (const value of body.values) {
    const hour = Date.parse(value.start);
    const length = accruedHours(hour, HOUR_MS, answeredAt);
    hours.set(hour, { allocated: value.allocatedGpuHours / length, idle: value.idleGpuHours / length });
  }
  return hours;
}

const SAMPLED = ["TOTAL_GPU", "ALLOCATED_GPU"];

// Map hour start (ms) -> {TOTAL_GPU, ALLOCATED_GPU}: the hour's mean over the clusters'
// history, summed over the clusters (one interval of the answer per hour, stamped where the
// hour ends). Empty when no cluster's metrics can be read (a caller without a cluster rule).
async function clusterHistory(clusters, start, now) {
  const end = hourOf(now) + HOUR_MS;
  const params = {
    metricType: SAMPLED, numberOfSamples: Math.round((end - start) / HOUR_MS),
    start: new Date(start).toISOString(), end: new Date(end).toISOString(),
  };
  const answers = await Promise.allSettled(clusters.map((c) =>
    get(`/api/v1/clusters/${encodeURIComponent(c.uuid)}/metrics`, params)));
  const hours = new Map();
  for (const answer of answers) {
    if (answer.status === "rejected") continue;
    for (const m of answer.value.body.measurements || []) {
      if (!SAMPLED.includes(m.type) || m.labels || !m.values) continue;
      for (const p of m.values) {
        if (p.value === null || p.value === undefined) continue;
        const hour = hourOf(Date.parse(p.timestamp) - 1);
        const entry = hours.get(hour) ?? {};
        entry[m.type] = (entry[m.type] ?? 0) + Number(p.value);
        hours.set(hour, entry);
      }
    }
  }
  return hours;
}

// Rows {t (epoch seconds), total, allocated, idle}: one per hour of the last day with cluster
// history or ledger data, then now. ``whole``: the caller reads whole clusters.
export async function gpuHistory(clusters, figures, nowDate, whole) {
  const now = nowDate.getTime();
  const start = hourOf(now - DAY_MS);
  const [ledger, sampled] = await Promise.all([
    ledgerByHour(start, now), whole ? clusterHistory(clusters, start, now) : new Map(),
  ]);
  const allocatedNow = total(figures.ALLOCATED_GPUS);
  const current = {
    total: whole ? total(figures.TOTAL_GPUS) : allocatedNow, allocated: allocatedNow, idle: total(figures.IDLE_ALLOCATED_GPUS),
  };
  const hours = [...new Set([...ledger.keys(), ...sampled.keys()])].sort((a, b) => a - b);
  const rows = hours.map((hour) => {
    const history = sampled.get(hour) ?? {};
    const usage = ledger.get(hour) ?? { allocated: 0, idle: 0 };
    const allocated = history.ALLOCATED_GPU ?? usage.allocated;
    return {
      t: hour / 1000, total: whole ? history.TOTAL_GPU ?? current.total : allocated, allocated,
      idle: Math.min(usage.idle, allocated),
    };
  });
  rows.push({ t: now / 1000, ...current });
  return rows;
}

// Draws the rows as three stacked bands, bottom first: idle, allocated not idle, free (the last
// only for a caller reading whole clusters).
export function drawGpuHistory(container, rows, whole) {
  const idle = rows.map((r) => Math.min(r.idle, r.allocated));
  const end = rows[rows.length - 1].t;
  const layers = [
    { ...BANDS.idle, values: idle },
    { ...BANDS.busy, values: rows.map((r, i) => r.allocated - idle[i]) },
  ];
  if (whole) layers.push({ ...BANDS.free, values: rows.map((r) => Math.max(r.total - r.allocated, 0)) });
  container.dataset.scope = whole ? "clusters" : "projects";
  return stackedChart(container, {
    title: whole
      ? "GPUs stacked: Idle and Allocated, not idle add up to the allocation; Free tops it up to the total"
      : "Your projects' GPUs stacked: Idle and Allocated, not idle add up to the allocation",
    unit: "GPUs",
    xs: rows.map((r) => r.t),
    timeSpan: [end - DAY_MS / 1000, end],
    layers,
  });
}
