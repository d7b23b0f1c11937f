// The overview's GPUs over the last 24 hours, stacked: idle allocated GPUs at the bottom, the
// allocated GPUs in use above them, the free GPUs on top, so the top edge is the total.
//
// Total, allocated and free come from every cluster's sampled metrics (summed per time); idle
// GPUs from the usage ledger, hour by hour (idle GPU-hours in an hour are the mean idle GPUs);
// the right edge is now, from the nodes telemetry the figures above the chart show.

import { get } from "../api.js";
import { timeSeriesChart } from "../charts.js";

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const SAMPLES = 96;
export const BANDS = [
  { label: "Free", colour: "#98a2b3", fill: "#e4e7ec" },
  { label: "In use", colour: "#2f6fed", fill: "#bcd0fb" },
  { label: "Idle", colour: "#d97706", fill: "#fcd9a0" },
];

// Idle GPUs of finished hours do not change; they are asked for once per page load.
const finishedHours = new Map();

async function idleInHour(hourStart, now) {
  const cached = finishedHours.get(hourStart);
  if (cached !== undefined) return cached;
  const end = Math.min(hourStart + HOUR_MS, now);
  const { body } = await get("/api/v1/usage", {
    start: new Date(hourStart).toISOString(), end: new Date(hourStart + HOUR_MS).toISOString(),
  });
  const idle = (body.values[0]?.idleGpuHours ?? 0) / Math.max((end - hourStart) / HOUR_MS, 1 / 60);
  if (hourStart + HOUR_MS <= now) finishedHours.set(hourStart, idle);
  return idle;
}

// Map hour start (ms) -> idle GPUs, for the hours of the last day; empty when the usage
// ledger cannot be read (the chart then shows allocation without its idle part).
async function idleByHour(now) {
  const first = Math.floor((now - DAY_MS) / HOUR_MS) * HOUR_MS;
  const hours = [];
  for (let hour = first; hour <= now; hour += HOUR_MS) hours.push(hour);
  const answers = await Promise.allSettled(hours.map((hour) => idleInHour(hour, now)));
  const idle = new Map();
  answers.forEach((answer, i) => {
    if (answer.status === "fulfilled") idle.set(hours[i], answer.value);
  });
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

function sum(values) {
  let total = 0;
  for (const value of values.values()) total += value;
  return total;
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
    t: nowSeconds, total: sum(figures.TOTAL_GPUS), allocated: sum(figures.ALLOCATED_GPUS), idle: sum(figures.IDLE_ALLOCATED_GPUS),
  });
  return rows;
}

// Draws the rows as three stacked bands; each band's legend shows its own size, not its top.
export function drawGpuHistory(container, rows) {
  const idle = rows.map((r) => (r.idle === undefined ? null : Math.min(r.idle, r.allocated)));
  const shown = [
    rows.map((r) => r.total - r.allocated),
    rows.map((r, i) => r.allocated - (idle[i] ?? 0)),
    idle,
  ];
  const tops = [rows.map((r) => r.total), rows.map((r) => r.allocated), idle];
  container.dataset.points = String(rows.length);
  return timeSeriesChart(container, {
    title: "GPUs (stacked: idle, in use, free; the top is the total)",
    unit: "GPUs",
    series: BANDS.map((band, b) => ({
      ...band,
      points: rows.map((r, i) => [r.t, tops[b][i]]).filter(([, v]) => v !== null),
      shown: (i) => shown[b][i],
    })),
  });
}
