// Which charts a workload page draws, titled in words with their units: each chart names the
// metric types it plots, a label per type when it plots several, and how per-GPU series add up.

// Per-GPU series beyond this many are drawn as one aggregate line, the breakdown on demand.
export const MAX_LINES = 8;

const UNIT_WORDS = {
  "%": "%", bytes: "bytes", cores: "cores", pods: "pods", requests: "requests", "requests/min": "requests per minute",
  s: "seconds",
};

export function chartTitle(chart) {
  const unit = UNIT_WORDS[chart.unit] ?? chart.unit;
  return chart.title.toLowerCase() === unit ? chart.title : `${chart.title} (${unit})`;
}

export const WORKLOAD_CHARTS = [
  { key: "GPU_UTILIZATION", title: "GPU utilisation", unit: "%", types: ["GPU_UTILIZATION"], perGpu: "mean" },
  { key: "GPU_MEMORY_USAGE_BYTES", title: "GPU memory used", unit: "bytes", types: ["GPU_MEMORY_USAGE_BYTES"], perGpu: "sum" },
  { key: "CPU_USAGE_CORES", title: "CPU in use", unit: "cores", types: ["CPU_USAGE_CORES"] },
  { key: "CPU_MEMORY_USAGE_BYTES", title: "CPU memory in use", unit: "bytes", types: ["CPU_MEMORY_USAGE_BYTES"] },
  { key: "POD_COUNT", title: "Pods", unit: "pods", types: ["POD_COUNT", "RUNNING_POD_COUNT"], labels: ["all", "running"] },
];

// NIM exposes vLLM's engine metrics under these types; drawn for inference workloads.
export const INFERENCE_CHARTS = [
  {
    key: "NIM_REQUESTS", title: "Requests in flight", unit: "requests",
    types: ["NIM_NUM_REQUESTS_RUNNING", "NIM_NUM_REQUESTS_WAITING"], labels: ["running", "waiting"],
  },
  {
    // Counters: a point is the increase since the previous one, so it is drawn as a rate.
    key: "NIM_REQUEST_TOTALS", title: "Requests finished", unit: "requests/min",
    types: ["NIM_REQUEST_SUCCESS_TOTAL", "NIM_REQUEST_FAILURE_TOTAL"], labels: ["succeeded", "failed"],
    ratePerSeconds: 60,
  },
  { key: "NIM_TIME_TO_FIRST_TOKEN", title: "Time to first token", unit: "s", types: ["NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES"] },
  { key: "NIM_E2E_LATENCY", title: "End-to-end request latency", unit: "s", types: ["NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES"] },
  // Reported as a fraction 0-1; drawn in percent like every other utilisation.
  { key: "NIM_KV_CACHE", title: "KV cache usage", unit: "%", types: ["NIM_GPU_CACHE_USAGE_PERC"], scale: 100 },
];

export const INFERENCE_TYPES = new Set([
  "Inference", "DistributedInference", "InferenceService", "NIMService", "LeaderWorkerSet",
]);

export const POD_CHARTS = [
  { key: "GPU_UTILIZATION_PER_GPU", title: "GPU utilisation", unit: "%", types: ["GPU_UTILIZATION_PER_GPU"], perGpu: "mean" },
  { key: "GPU_MEMORY_USAGE_BYTES_PER_GPU", title: "GPU memory used", unit: "bytes", types: ["GPU_MEMORY_USAGE_BYTES_PER_GPU"], perGpu: "sum" },
  { key: "GPU_SM_ACTIVITY_PER_GPU", title: "SM activity", unit: "%", types: ["GPU_SM_ACTIVITY_PER_GPU"], perGpu: "mean" },
];

export function typesOf(charts) {
  return charts.flatMap((chart) => chart.types);
}

function points(values, scale = 1) {
  return values.map((p) => [Date.parse(p.timestamp) / 1000, Number(p.value) * scale]);
}

function labelOf(labels, fallback) {
  const gpu = labels?.gpu;
  if (gpu !== undefined) return `GPU ${gpu}`;
  return Object.entries(labels || {}).map(([k, v]) => `${k} ${v}`).join(" ") || fallback;
}

// A counter's points as a rate per ``seconds``. Either backend answers a counter's point as
// the rate it rose at times the interval's length (``step`` seconds), so dividing by the
// step gives the rate whether the counter was sampled every few seconds or every few minutes,
// and an interval without a point does not halve the rate of the one after it.
export function asRate(points, seconds, step) {
  return points.map(([t, increase]) => [t, (increase * seconds) / step]);
}

// The series of one chart from a metrics answer (measurements, and histogram for percentiles)
// asked for points ``step`` seconds apart.
export function seriesFor(chart, body, step) {
  const series = [];
  chart.types.forEach((type, index) => {
    const fallback = chart.labels?.[index] ?? chart.title;
    for (const m of body.measurements || []) {
      if (m.type !== type || !m.values) continue;
      const drawn = points(m.values, chart.scale);
      series.push({
        label: chart.labels?.[index] ?? labelOf(m.labels, fallback),
        points: chart.ratePerSeconds ? asRate(drawn, chart.ratePerSeconds, step) : drawn,
      });
    }
    for (const hist of body.histogram || []) {
      if (hist.type !== type || !hist.values) continue;
      for (const name of ["p50", "p90", "p99"]) {
        series.push({
          label: name,
          points: hist.values.filter((v) => v.data?.[name] !== undefined)
            .map((v) => [Date.parse(v.timestamp) / 1000, Number(v.data[name])]),
        });
      }
    }
  });
  return series;
}

// One line standing for many per-GPU lines: their mean (utilisation) or sum (memory) per time.
export function aggregate(series, how) {
  const byTime = new Map();
  for (const s of series) {
    for (const [t, v] of s.points) {
      const entry = byTime.get(t) ?? { sum: 0, count: 0 };
      entry.sum += v;
      entry.count += 1;
      byTime.set(t, entry);
    }
  }
  const points = [...byTime].sort((a, b) => a[0] - b[0])
    .map(([t, e]) => [t, how === "mean" ? e.sum / e.count : e.sum]);
  const label = how === "mean" ? `mean of ${series.length} GPUs` : `total of ${series.length} GPUs`;
  return { label, points };
}

// A node's charts: its GPUs as a pod's are charted, the whole node's GPU utilisation (a GPU no
// pod reports on counts as idle) and its CPU as a workload's is.
export const NODE_CHARTS = [
  ...POD_CHARTS,
  { key: "GPU_UTILIZATION", title: "GPU utilisation, all GPUs", unit: "%", types: ["GPU_UTILIZATION"] },
  ...WORKLOAD_CHARTS.filter((chart) => chart.key.startsWith("CPU_")),
];
