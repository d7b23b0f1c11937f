// The overview's GPUs over the last 24 hours, stacked: idle allocated GPUs at the bottom, the
// allocated GPUs in use above them, the free GPUs on top, so the top edge is the total.
//
// Total, allocated and free come from every cluster's sampled metrics (summed per time); idle
// GPUs from the usage ledger, hour by hour (idle GPU-hours in an hour are the mean idle GPUs);
// the right edge is now, from the nodes telemetry the figures above the chart show.

import { get } from "../api.js";
import { stackedChart } from "../charts.js";
import { total } from "../inventory.js";

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const SAMPLES = 96;
const BANDS = {
  idle: { label: "Idle", stroke: "#d97706", fill: "#fcd9a0" },
  busy: { label: "In use", stroke: "#2f6fed", fill: "#bcd0fb" },
  free: { label: "Free", stroke: "#98a2b3", fill: "#e4e7ec" },
};

// Map hour start (ms) -> mean idle GPUs in that hour (the current one as far as it went);
// empty when the usage ledger cannot be read (the chart then shows no idle part).
async function idleByHour(now) {
  let body;
  try {
    ({ body } = await get("/api/v1/usage", { start: new Date(now - DAY_MS).toISOString(), end: new Date(now).toISOString(), bucket: "hour" }));
  } catch {
    return new Map();
  }
  const idle = new Map();
  for (const value of body.values) {
    const hour = Date.parse(value.start);
    const hours = Math.max((Math.min(hour + HOUR_MS, now) - hour) / HOUR_MS, 1 / 60);
    idle.set(hour, value.idleGpuHours / hours);
  }
  return idle;
}

// Σ over clusters of each type's value per timestamp (seconds).
async function clusterSeries(clusters, now) {
  const params = {
    metricType: "TOTAL_GPU,ALLOCATED_GPU", numberOfSamples: SAMPLES,
    start: new Date(now - DAY_MS).toISOString(), end: new Date(now).toISOString(),
  };
  const answers = await Promise.allSettled(clusters.map((c) =>
    get(`/api/v1/clusters/${encodeURIComponent(c.uuid)}/metrics`, params)));
  const totals = { TOTAL_GPU: new Map(), ALLOCATED_GPU: new Map() };
  let failure = null;
  for (const answer of answers) {
    if (answer.status === "rejected") {
      failure = answer.reason;
      continue;
    }
    for (const m of answer.value.body.measurements || []) {
      if (!totals[m.type] || !m.values || m.labels) continue;
      for (const p of m.values) {
        const t = Date.parse(p.timestamp) / 1000;
        totals[m.type].set(t, (totals[m.type].get(t) ?? 0) + Number(p.value));
      }
    }
  }
  if (failure && answers.every((a) => a.status === "rejected")) throw failure;
  return totals;
}

// The chart's columns: times, and per time total, allocated and idle GPUs (idle may be null).
export async function gpuHistory(clusters, figures, nowDate) {
  const now = nowDate.getTime();
  const [totals, idle] = await Promise.all([clusterSeries(clusters, now), idleByHour(now)]);
  const nowSeconds = now / 1000;
  const times = [...totals.TOTAL_GPU.keys()].filter((t) => t < nowSeconds && totals.ALLOCATED_GPU.has(t)).sort((a, b) => a - b);
  const rows = times.map((t) => ({
    t, total: totals.TOTAL_GPU.get(t), allocated: totals.ALLOCATED_GPU.get(t),
    idle: idle.get(Math.floor((t * 1000) / HOUR_MS) * HOUR_MS),
  }));
  rows.push({
    t: nowSeconds, total: total(figures.TOTAL_GPUS), allocated: total(figures.ALLOCATED_GPUS), idle: total(figures.IDLE_ALLOCATED_GPUS),
  });
  return rows;
}

// Draws the rows as three stacked bands, bottom first: idle, in use, free.
export function drawGpuHistory(container, rows) {
  const idle = rows.map((r) => Math.min(r.idle ?? 0, r.allocated));
  return stackedChart(container, {
    title: "GPUs (stacked: idle, in use, free; the top is the total)",
    unit: "GPUs",
    xs: rows.map((r) => r.t),
    timeSpan: [rows[rows.length - 1].t - DAY_MS / 1000, rows[rows.length - 1].t],
    layers: [
      { ...BANDS.idle, values: idle },
      { ...BANDS.busy, values: rows.map((r, i) => r.allocated - idle[i]) },
      { ...BANDS.free, values: rows.map((r) => Math.max(r.total - r.allocated, 0)) },
    ],
  });
}
