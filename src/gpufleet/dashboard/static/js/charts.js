// Metric time series as uPlot line charts; grouped telemetry as horizontal bars.

import uPlot from "../vendor/uPlot.esm.js";
import { h, replace } from "./dom.js";
import { withUnit } from "./format.js";

// Beyond this many lines a legend is noise: per-GPU breakdowns of large jobs draw without one.
const MAX_LEGEND = 12;
const PALETTE = ["#2f6fed", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#dc2626", "#ca8a04", "#4b5563"];

// A line is broken where a series' consecutive points are further apart than this many steps
// (the interval each point summarises): no sample fell in the intervals between them.
const GAP_STEPS = 1.5;
// ...and never under 15 minutes: samples 10 minutes apart (the demo's past, as sparse as the
// idle-GPU rule still reads as continuous) are one line even where a 1-hour range asks for
// points 30 s apart, rather than a row of dots.
const MIN_GAP_SECONDS = 1.5 * 600;

// series: [{label, points: [[epochSeconds, value], ...]}] as uPlot's data: one x array shared
// by every series. A series is undefined at another series' x (uPlot draws across it) and null
// wherever its own points are more than ``gap`` seconds apart (uPlot breaks the line there),
// with an x of its own in each gap so the break shows even when every series pauses at once.
function aligned(series, gap) {
  const sorted = series.map((s) => [...s.points].sort((a, b) => a[0] - b[0]));
  const apart = (points, i) => points[i + 1][0] - points[i][0] > gap;
  const xs = new Set();
  for (const points of sorted) {
    points.forEach(([t], i) => {
      xs.add(t);
      if (i + 1 < points.length && apart(points, i)) xs.add((t + points[i + 1][0]) / 2);
    });
  }
  const times = [...xs].sort((a, b) => a - b);
  const columns = sorted.map((points) => {
    let next = 0; // the first point at or after x
    return times.map((x) => {
      while (next < points.length && points[next][0] < x) next++;
      if (next < points.length && points[next][0] === x) return points[next][1];
      return next > 0 && next < points.length && apart(points, next - 1) ? null : undefined;
    });
  });
  return [times, ...columns];
}

// Points that no line reaches (a lone sample between gaps), for uPlot to draw as dots; all of
// them when uPlot draws every point anyway (``show``).
function lonePoints(u, seriesIndex, show) {
  if (show) return null;
  const drawn = [];
  u.data[seriesIndex].forEach((v, i) => v !== undefined && drawn.push([i, v]));
  const broken = (k) => k < 0 || k >= drawn.length || drawn[k][1] === null;
  return drawn.filter(([, v], k) => v !== null && broken(k - 1) && broken(k + 1)).map(([i]) => i);
}

// series: [{label, points}] asked for points ``step`` seconds apart. Many series (a large job's
// GPUs) draw without a legend.
export function timeSeriesChart(container, { title, unit, series, step, empty = "No samples in this range." }) {
  forgetPlot(container);
  const points = series.reduce((total, s) => total + s.points.length, 0);
  container.dataset.series = String(series.length);
  container.dataset.points = String(points);
  if (!points) {
    replace(container, h("h3", { class: "chart-title" }, title), h("p", { class: "muted" }, empty));
    return null;
  }
  replace(container);
  // The chart goes inside the container's padding, so measure the content box.
  const style = getComputedStyle(container);
  const inner = container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const width = Math.max(240, inner || 600);
  const options = {
    title,
    width,
    height: 220,
    legend: { live: true, show: series.length <= MAX_LEGEND },
    scales: { x: { time: true } },
    axes: [{}, valueAxis(unit)],
    series: [
      {},
      ...series.map((s, i) => ({
        label: s.label,
        stroke: PALETTE[i % PALETTE.length],
        width: 1.5,
        points: { filter: lonePoints },
        value: (_u, v) => (v === null || v === undefined ? "–" : withUnit(v, unit)),
      })),
    ],
  };
  const gap = Math.max(GAP_STEPS * step, MIN_GAP_SECONDS);
  container.plot = new uPlot(options, aligned(series, gap), container);
  return container.plot;
}

// A chart drawn again in the same place (a refresh) lets go of the previous one's listeners.
function forgetPlot(container) {
  container.plot?.destroy();
  container.plot = null;
}

// Axis ticks stay short (the title carries the unit): 1.5K rather than "1,500 requests".
function compact(digits) {
  return new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: digits });
}

function fixed(digits) {
  return new Intl.NumberFormat(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
// Byte ticks fall on binary steps (1, 2, 4 ... 512 of a unit), so they read as round numbers
// of that unit (16, 32, 48 GiB) where decimal steps of 10 GB read 37, 47, 56 GiB.
const BYTE_INCREMENTS = BYTE_UNITS.flatMap((_unit, power) =>
  Array.from({ length: 10 }, (_v, doubling) => 2 ** doubling * 1024 ** power));
const MAX_DIGITS = 4;

function byteUnitOf(value) {
  if (!(value > 0)) return 0;
  return Math.max(0, Math.min(Math.floor(Math.log2(value) / 10), BYTE_UNITS.length - 1));
}

// Byte ticks in the unit of the largest one, or a smaller one when the step is under a quarter
// of it: ticks 128 GiB apart read 1,152 and 1,280 GiB rather than 1.125 and 1.25 TiB.
function byteUnit(ticks) {
  const largest = Math.max(...ticks.map((v) => Math.abs(v)), 0);
  const steps = ticks.slice(1).map((v, i) => v - ticks[i]).filter((d) => d > 0);
  return Math.min(byteUnitOf(largest), byteUnitOf(4 * (steps.length ? Math.min(...steps) : largest)));
}

// A tick's label with ``digits`` decimals of ``scaled(value)``, and whether they show it exactly.
function fixedFormat(scaled, suffix) {
  return {
    label: (v, digits) => `${fixed(digits).format(scaled(v))}${suffix}`,
    exact: (v, digits) => {
      const x = scaled(v);
      return Math.abs(x - Number(x.toFixed(digits))) <= 1e-9 * Math.max(1, Math.abs(x));
    },
  };
}

function tickFormat(ticks, unit) {
  if (unit === "bytes") {
    const power = byteUnit(ticks);
    return fixedFormat((v) => v / 1024 ** power, ` ${BYTE_UNITS[power]}`);
  }
  if (unit === "%") return fixedFormat((v) => v, "%");
  if (unit === "GPUs" || unit === "GPU-h") return fixedFormat((v) => v, ` ${unit}`);
  return {
    label: (v, digits) => compact(digits).format(v),
    exact: (v, digits) => compact(digits).format(v) === compact(MAX_DIGITS).format(v),
  };
}

// The labels of an axis' ticks with the fewest decimals that show every tick exactly and keep
// the labels distinct: a 0.4-0.5 core axis with ticks 0.025 apart reads 0.400, 0.425, 0.450,
// not 0.4, 0.4, 0.5; ticks 2.5 % apart read 2.5%, 5.0%, not 3%, 5%.
export function axisLabels(ticks, unit) {
  const values = ticks.filter((v) => v !== null);
  const format = tickFormat(values, unit);
  let labels = [];
  for (let digits = 0; digits <= MAX_DIGITS; digits++) {
    labels = ticks.map((v) => (v === null ? "" : format.label(v, digits)));
    const exact = values.every((v) => format.exact(v, digits));
    if (exact && new Set(labels).size === labels.length) break;
  }
  return labels;
}

// A value axis as wide as its longest label (a fixed width cut "2.87 GiB" to ".87 GiB").
function valueAxis(unit) {
  return {
    values: (_u, ticks) => axisLabels(ticks, unit),
    incrs: unit === "bytes" ? BYTE_INCREMENTS : undefined,
    size: (u, values, index, cycle) => {
      const axis = u.axes[index];
      if (cycle > 1) return axis._size;
      const longest = (values ?? []).reduce((a, b) => (String(b).length > a.length ? String(b) : a), "");
      let size = axis.ticks.size + axis.gap + 4;
      if (longest) {
        u.ctx.font = axis.font[0];
        size += u.ctx.measureText(longest).width / (window.devicePixelRatio || 1);
      }
      return Math.ceil(size);
    },
  };
}

// Stacks start at zero: an automatic range cut off the bottom band (a lowest label of 80).
function fromZero(_u, _min, max) {
  const top = max > 0 ? uPlot.rangeNum(0, max, 0.1, true)[1] : 1;
  return [0, top];
}

// Through the style object rather than a style attribute, which a strict CSP would refuse.
function sized(node, percent) {
  node.style.width = `${percent}%`;
  return node;
}

// rows: [{label, value, href?, phase?}]; the label and the number link to href, a phase colours the bar.
export function barChart(container, rows, { unit = "", empty = "Nothing to show." } = {}) {
  container.dataset.bars = String(rows.length);
  if (!rows.length) return replace(container, h("p", { class: "muted" }, empty));
  const top = Math.max(...rows.map((r) => r.value), 0) || 1;
  const cells = rows.flatMap((row) => [
    h("span", { class: "label", title: row.label },
      row.href ? h("a", { href: row.href }, row.label) : row.label),
    sized(h("div", { class: row.phase ? `bar phase-${row.phase}` : "bar", "data-phase": row.phase }), (100 * row.value) / top),
    h("span", { class: "num" }, row.href ? h("a", { href: row.href }, withUnit(row.value, unit)) : withUnit(row.value, unit)),
  ]);
  return replace(container, h("div", { class: "bars" }, cells));
}

// layers: [{label, values, fill}] bottom first, over one x axis (epoch seconds). Each layer is
// drawn on top of the ones below it; the legend shows a layer's own value, not the running sum.
// ``timeSpan`` [start, end] (epoch seconds) fixes the time axis, so a few points do not stretch it.
export function stackedChart(container, { title, unit, xs, layers, timeSpan }) {
  forgetPlot(container);
  container.dataset.points = String(xs.length);
  if (!xs.length) {
    replace(container, h("h3", { class: "chart-title" }, title), h("p", { class: "muted" }, "Nothing in this window."));
    return null;
  }
  replace(container);
  const sums = [];
  let below = xs.map(() => 0);
  for (const layer of layers) {
    below = below.map((total, i) => total + (layer.values[i] ?? 0));
    sums.push(below);
  }
  const style = getComputedStyle(container);
  const inner = container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  // uPlot paints series in order: the top of the stack first, each lower layer over it.
  const order = layers.map((_layer, i) => i).reverse();
  const options = {
    title,
    width: Math.max(300, inner || 600),
    height: 260,
    legend: { live: true },
    scales: { x: { time: true, range: timeSpan ? () => timeSpan : undefined }, y: { range: fromZero } },
    axes: [{}, valueAxis(unit)],
    series: [
      {},
      ...order.map((i) => ({
        label: layers[i].label,
        stroke: layers[i].stroke,
        fill: layers[i].fill,
        width: 1,
        value: (_u, _v, _s, index) => (index === null ? "–" : withUnit(layers[i].values[index], unit)),
      })),
    ],
  };
  container.plot = new uPlot(options, [xs, ...order.map((i) => sums[i])], container);
  return container.plot;
}
