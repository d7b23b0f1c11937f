// Metric charts of one metrics path (a workload's, a pod's or a node's) over a chosen range:
// the range buttons, the request, and charts drawn from its answer.

import { get } from "./api.js";
import { timeSeriesChart } from "./charts.js";
import { errorLine, h, replace } from "./dom.js";
import { MAX_LINES, aggregate, chartTitle, seriesFor, typesOf } from "./metric-charts.js";

export const RANGES = [["1h", 3600], ["6h", 6 * 3600], ["24h", 86400], ["7d", 7 * 86400]]
  .map(([name, seconds]) => ({ name, seconds }));
export const DEFAULT_RANGE = RANGES[1];
const SAMPLES = 120;

// One chart of points ``step`` seconds apart; per-GPU series beyond MAX_LINES draw as their
// aggregate, with a button for the breakdown.
function drawChart(node, chart, series, step) {
  const title = chartTitle(chart);
  if (!chart.perGpu || series.length <= MAX_LINES) {
    timeSeriesChart(node, { title, unit: chart.unit, series, step });
    return;
  }
  const plot = h("div");
  let breakdown = false;
  const toggle = h("button", { type: "button", class: "link chart-toggle", "data-breakdown": "off" });
  const draw = () => {
    const drawn = breakdown ? series : [aggregate(series, chart.perGpu)];
    timeSeriesChart(plot, { title, unit: chart.unit, series: drawn, step });
    node.dataset.series = plot.dataset.series;
    node.dataset.points = plot.dataset.points;
    toggle.dataset.breakdown = breakdown ? "on" : "off";
    toggle.textContent = breakdown ? "Show the aggregate" : `Show each of the ${series.length} GPUs`;
  };
  toggle.addEventListener("click", () => { breakdown = !breakdown; draw(); });
  replace(node, plot, toggle);
  draw();
}

// Charts from a metrics path (a workload's or a pod's) over the last ``seconds``. ``isLatest``
// is false once a newer range was asked for, so a slow older answer never replaces a newer one.
export async function metrics(container, path, charts, range, isLatest, marker = "data-metric") {
  replace(container, h("p", { class: "muted" }, "Loading…"));
  container.dataset.loading = range.name;
  const end = new Date();
  const start = new Date(end.getTime() - range.seconds * 1000);
  let response;
  try {
    response = await get(path, {
      metricType: typesOf(charts).join(","), start: start.toISOString(), end: end.toISOString(), numberOfSamples: SAMPLES,
    });
  } catch (error) {
    if (isLatest()) replace(container, errorLine(error));
    return;
  }
  if (!isLatest()) return;
  const note = response.status === 207
    ? h("p", { class: "muted" }, "Some metric types could not be read: ", response.headers.get("X-Gpufleet-Metric-Failures") || "")
    : null;
  // A type without a sample in the range gets no empty frame: one line names them all.
  const step = range.seconds / SAMPLES;
  const drawn = charts.map((chart) => ({ chart, series: seriesFor(chart, response.body, step) }));
  const shown = drawn.filter(({ series }) => series.some((s) => s.points.length));
  const empty = drawn.filter((d) => !shown.includes(d)).map(({ chart }) => chart);
  const nodes = shown.map(({ chart }) => h("div", { class: "panel chart", [marker]: chart.key }));
  const without = empty.length
    ? h("p", { class: "muted no-samples", dataset: { empty: empty.map((c) => c.key).join(",") } },
      `No samples in this range: ${empty.map(chartTitle).join(", ")}.`)
    : null;
  replace(container, note, nodes.length ? h("div", { class: "grid" }, nodes) : null, without);
  shown.forEach(({ chart, series }, index) => drawChart(nodes[index], chart, series, step));
  delete container.dataset.loading;
  container.dataset.range = range.name;
}

// Each call returns a check that holds until the next call: the latest request wins.
export function latestOnly(isCurrent) {
  let latest = 0;
  return () => {
    const mine = ++latest;
    return () => isCurrent() && mine === latest;
  };
}


// The range buttons, the default one active; choosing one calls ``choose(range)``.
export function rangeButtons(choose) {
  const buttons = RANGES.map((range) => h("button", {
    type: "button", "data-range": range.name, class: range === DEFAULT_RANGE ? "active" : null,
    onclick: (event) => {
      for (const b of buttons) b.classList.toggle("active", b === event.currentTarget);
      choose(range);
    },
  }, range.name));
  return h("div", { class: "ranges" }, buttons);
}
