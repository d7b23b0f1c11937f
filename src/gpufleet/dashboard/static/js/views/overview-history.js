// The overview's GPUs over the last 24 hours, stacked: idle allocated GPUs at the bottom, the
// allocated GPUs in use above them, the free GPUs on top, so the top edge is the total.
//
// One point per hour. Allocated and idle GPUs come from the usage ledger (`bucket=hour`: the
// GPU-hours of an hour are its mean GPUs), which the agents' reports keep, past included; the
// total is the mean of the clusters' sampled `TOTAL_GPU` in that hour where the server sampled
// it, else the total now. The right edge is now, from the nodes telemetry the figures above
// the chart show.

import { get } from "../api.js";
import { stackedChart } from "../charts.js";
import { total } from "../inventory.js";

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const BANDS = {
  idle: { label: "Idle", stroke: "#d97706", fill: "#fcd9a0" },
  busy: { label: "In use", stroke: "#2f6fed", fill: "#bcd0fb" },
  free: { label: "Free", stroke: "#98a2b3", fill: "#e4e7ec" },
};

function hourOf(ms) {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

// Map hour start (ms) -> {allocated, idle} mean GPUs (the current hour as far as it went).
async function ledgerByHour(start, now) {
  const { body } = await get("/api/v1/usage", {
    start: new Date(start).toISOString(), end: new Date(now).toISOString(), bucket: "hour",
  });
  const hours = new Map();
  for (const value of body.values) {
    const hour = Date.parse(value.start);
    const length = Math.max((Math.min(hour + HOUR_MS, now) - hour) / HOUR_MS, 1 / 60);
    hours.set(hour, { allocated: value.allocatedGpuHours / length, idle: value.idleGpuHours / length });
  }
  return hours;
}

// Map hour start (ms) -> mean total GPUs over the clusters' samples in that hour. Empty when
// no cluster's metrics can be read (a caller without a cluster rule): the total now stands in.
async function sampledTotals(clusters, start, now) {
  const params = {
    metricType: "TOTAL_GPU", numberOfSamples: 96, start: new Date(start).toISOString(), end: new Date(now).toISOString(),
  };
  const answers = await Promise.allSettled(clusters.map((c) =>
    get(`/api/v1/clusters/${encodeURIComponent(c.uuid)}/metrics`, params)));
  const byTime = new Map();
  for (const answer of answers) {
    if (answer.status === "rejected") continue;
    for (const m of answer.value.body.measurements || []) {
      if (m.type !== "TOTAL_GPU" || m.labels || !m.values) continue;
      for (const p of m.values) {
        const t = Date.parse(p.timestamp);
        byTime.set(t, (byTime.get(t) ?? 0) + Number(p.value));
      }
    }
  }
  const perHour = new Map();
  for (const [t, value] of byTime) {
    const entry = perHour.get(hourOf(t)) ?? { sum: 0, count: 0 };
    entry.sum += value;
    entry.count += 1;
    perHour.set(hourOf(t), entry);
  }
  return new Map([...perHour].map(([hour, e]) => [hour, e.sum / e.count]));
}

// Rows {t (epoch seconds), total, allocated, idle}: one per hour of the last day with ledger
// data, then now.
export async function gpuHistory(clusters, figures, nowDate) {
  const now = nowDate.getTime();
  const start = hourOf(now - DAY_MS);
  const [ledger, totals] = await Promise.all([ledgerByHour(start, now), sampledTotals(clusters, start, now)]);
  const current = {
    total: total(figures.TOTAL_GPUS), allocated: total(figures.ALLOCATED_GPUS), idle: total(figures.IDLE_ALLOCATED_GPUS),
  };
  const rows = [...ledger].sort((a, b) => a[0] - b[0]).map(([hour, figure]) => ({
    t: hour / 1000, total: totals.get(hour) ?? current.total, allocated: figure.allocated, idle: figure.idle,
  }));
  rows.push({ t: now / 1000, ...current });
  return rows;
}

// Draws the rows as three stacked bands, bottom first: idle, in use, free.
export function drawGpuHistory(container, rows) {
  const idle = rows.map((r) => Math.min(r.idle, r.allocated));
  const end = rows[rows.length - 1].t;
  return stackedChart(container, {
    title: "GPUs (stacked: idle, in use, free; the top is the total)",
    unit: "GPUs",
    xs: rows.map((r) => r.t),
    timeSpan: [end - DAY_MS / 1000, end],
    layers: [
      { ...BANDS.idle, values: idle },
      { ...BANDS.busy, values: rows.map((r, i) => r.allocated - idle[i]) },
      { ...BANDS.free, values: rows.map((r) => Math.max(r.total - r.allocated, 0)) },
    ],
  });
}
