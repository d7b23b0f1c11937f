// One workload: details, pending scheduling messages, pods (and one pod's GPU charts), the
// history of phase changes with Kubernetes events inline, and metric charts.

import { get } from "../api.js";
import { timeSeriesChart } from "../charts.js";
import { errorLine, h, phaseBadge, replace } from "../dom.js";
import { age, duration, number, unitFor, when } from "../format.js";

const METRIC_TYPES = [
  "GPU_UTILIZATION", "GPU_MEMORY_USAGE_BYTES", "CPU_USAGE_CORES", "CPU_MEMORY_USAGE_BYTES", "POD_COUNT",
];
// Answered by every metrics backend (see docs/workload-details.md#pod-metrics).
const POD_METRIC_TYPES = ["GPU_UTILIZATION_PER_GPU", "GPU_MEMORY_USAGE_BYTES_PER_GPU", "GPU_SM_ACTIVITY_PER_GPU"];
const RANGES = [["1h", 3600], ["6h", 6 * 3600], ["24h", 86400], ["7d", 7 * 86400]];
const SAMPLES = 120;
const HISTORY_PAGE = 20;

function details(w) {
  const pairs = [
    ["ID", w.id], ["Type", w.type], ["Phase message", w.phaseMessage], ["Project", w.projectName],
    ["Department", w.departmentName], ["Cluster", w.clusterId], ["Namespace", w.namespace],
    ["Nodepools", (w.currentNodePools || []).join(", ")], ["Submitted by", w.submittedBy],
    ["Created", when(w.createdAt)], ["Phase updated", when(w.phaseUpdatedAt)], ["Completed", when(w.completedAt)],
    ["GPUs allocated", number(w.allocatedResources?.gpu ?? "")], ["Running pods", w.runningPods],
    ["Pending for", duration(w.totalPendingTimeSeconds)], ["Running for", duration(w.totalRunningTimeSeconds)],
    ["Priority", w.priorityClassName ?? w.priority], ["Category", w.category],
  ];
  return h("dl", { class: "details", id: "workload-details" },
    pairs.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function table(id, headers, rows, empty) {
  if (!rows.length) return h("p", { class: "muted", id }, empty);
  return h("table", { class: "data", id },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", { class: "wrap" }, c))))));
}

function schedulingMessages(w) {
  const rows = (w.pendingSchedulingMessages || []).map((m) => [m.nodePool, m.reason, m.userMessage ?? ""]);
  return table("scheduling-messages", ["Nodepool", "Reason", "Message"], rows, "No pending scheduling messages.");
}

// A history record is a phase change or a Kubernetes event, in the reference's shape; events
// name the object they are about (a pod, the pod group, the job).
function historyRow(record) {
  const { phaseUpdate, event } = record.spec;
  if (phaseUpdate) {
    return h("tr", { "data-kind": "PhaseUpdate" }, h("td", {}, when(record.meta.creationTimestamp)),
      h("td", {}, phaseBadge(phaseUpdate.phase)), h("td", { class: "wrap" }, phaseUpdate.phaseMessage ?? ""));
  }
  const about = event.involvedObject ? `${event.involvedObject.kind ?? ""} ${event.involvedObject.name ?? ""}`.trim() : "";
  return h("tr", { "data-kind": "Event", "data-event-type": event.type },
    h("td", {}, when(record.meta.creationTimestamp)),
    h("td", {}, h("span", { class: `event event-${event.type}` }, event.reason ?? event.type)),
    h("td", { class: "wrap" }, about ? h("span", { class: "muted" }, `${about}: `) : null, event.message ?? ""));
}

async function history(container, id, isCurrent) {
  const rows = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "Load more");
  let offset = 0;
  const load = async () => {
    more.disabled = true;
    try {
      const { body } = await get(`/api/v1/workloads/${encodeURIComponent(id)}/history`, { offset, limit: HISTORY_PAGE });
      if (!isCurrent()) return;
      for (const record of body.records) rows.append(historyRow(record));
      if (offset === 0 && !body.records.length) {
        rows.append(h("tr", {}, h("td", { class: "muted", colspan: 3 }, "No history recorded.")));
      }
      offset = body.next ?? offset;
      more.hidden = body.next === undefined || body.next === null;
      more.disabled = false;
    } catch (error) {
      if (isCurrent()) replace(container, errorLine(error));
    }
  };
  replace(container, h("table", { class: "data", id: "history" },
    h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Phase or event"), h("th", {}, "Message"))), rows), more);
  more.addEventListener("click", load);
  await load();
}

// The pods table; choosing a pod draws its GPU charts.
async function pods(container, id, isCurrent, choose) {
  try {
    const { body } = await get(`/api/v1/workloads/${encodeURIComponent(id)}/pods`);
    if (!isCurrent()) return;
    const rows = body.pods.map((p) => [
      h("button", { type: "button", class: "link", "data-pod": p.id, onclick: () => choose(p) }, p.name),
      phaseBadge(p.k8sPhase), p.nodeName ?? "", number(p.allocatedResources?.gpu ?? 0), age(p.createdAt),
    ]);
    replace(container, table("pods", ["Pod", "Phase", "Node", "GPUs", "Age"], rows, "No pods reported."));
  } catch (error) {
    if (isCurrent()) replace(container, errorLine(error));
  }
}

function seriesOf(measurements, type) {
  return measurements.filter((m) => m.type === type && m.values).map((m) => ({
    label: Object.entries(m.labels || {}).map(([k, v]) => `${k} ${v}`).join(" ") || type,
    points: m.values.map((p) => [Date.parse(p.timestamp) / 1000, Number(p.value)]),
  }));
}

// Charts of ``types`` from a metrics path (a workload's or a pod's) over the last ``seconds``.
async function metrics(container, path, types, seconds, isCurrent, marker = "data-metric") {
  replace(container, h("p", { class: "muted" }, "Loading…"));
  const end = new Date();
  const start = new Date(end.getTime() - seconds * 1000);
  let response;
  try {
    response = await get(path, {
      metricType: types.join(","), start: start.toISOString(), end: end.toISOString(), numberOfSamples: SAMPLES,
    });
  } catch (error) {
    if (isCurrent()) replace(container, errorLine(error));
    return;
  }
  if (!isCurrent()) return;
  const measurements = response.body.measurements || [];
  const note = response.status === 207
    ? h("p", { class: "muted" }, "Some metric types could not be read: ", response.headers.get("X-Gpufleet-Metric-Failures") || "")
    : null;
  const charts = types.map((type) => h("div", { class: "panel chart", [marker]: type }));
  replace(container, note, h("div", { class: "grid" }, charts));
  types.forEach((type, index) => {
    timeSeriesChart(charts[index], { title: type, unit: unitFor(type), series: seriesOf(measurements, type) });
  });
}

export async function renderWorkload(view, id, isCurrent) {
  replace(view, h("p", { class: "muted" }, "Loading…"));
  let workload;
  try {
    workload = (await get(`/api/v1/workloads/${encodeURIComponent(id)}`)).body;
  } catch (error) {
    if (isCurrent()) replace(view, h("h1", {}, "Workload"), errorLine(error), h("a", { href: "#/workloads" }, "Back to workloads"));
    return;
  }
  if (!isCurrent()) return;
  const historyBox = h("div");
  const podsBox = h("div");
  const chartsBox = h("div", { id: "metric-charts" });
  const podTitle = h("h2", {}, "Pod GPUs");
  const podChartsBox = h("div", { id: "pod-charts" }, h("p", { class: "muted" }, "Choose a pod above to see its GPUs."));
  const base = `/api/v1/workloads/${encodeURIComponent(workload.id)}`;
  let range = RANGES[1][1];
  let chosen = null;
  const drawPod = () => {
    if (!chosen) return;
    replace(podTitle, `Pod GPUs: ${chosen.name}`);
    metrics(podChartsBox, `${base}/pods/${encodeURIComponent(chosen.id)}/metrics`, POD_METRIC_TYPES, range, isCurrent,
      "data-pod-metric");
  };
  const choosePod = (pod) => {
    chosen = pod;
    for (const b of podsBox.querySelectorAll("button[data-pod]")) b.classList.toggle("active", b.dataset.pod === pod.id);
    drawPod();
  };
  const rangeButtons = RANGES.map(([name, seconds]) => h("button", {
    type: "button", "data-range": name,
    onclick: (event) => {
      for (const b of rangeButtons) b.classList.toggle("active", b === event.currentTarget);
      range = seconds;
      metrics(chartsBox, `${base}/metrics`, METRIC_TYPES, seconds, isCurrent);
      drawPod();
    },
  }, name));
  rangeButtons[1].classList.add("active");
  replace(view,
    h("p", {}, h("a", { href: "#/workloads" }, "‹ Workloads")),
    h("h1", { id: "workload-name" }, workload.name, phaseBadge(workload.phase)),
    h("div", { class: "grid" },
      h("section", { class: "panel" }, h("h2", {}, "Details"), details(workload)),
      h("section", { class: "panel" },
        h("h2", {}, "Pending scheduling messages"), schedulingMessages(workload),
        h("h2", {}, "Pods"), podsBox)),
    h("section", { class: "panel" },
      h("div", { class: "filters" }, h("h2", {}, "Metrics"), h("div", { class: "ranges" }, rangeButtons)), chartsBox),
    h("section", { class: "panel", id: "pod-gpus" }, podTitle, podChartsBox),
    h("section", { class: "panel" }, h("h2", {}, "History and events"), historyBox));
  await Promise.all([
    history(historyBox, workload.id, isCurrent),
    pods(podsBox, workload.id, isCurrent, choosePod),
    metrics(chartsBox, `${base}/metrics`, METRIC_TYPES, range, isCurrent),
  ]);
}
