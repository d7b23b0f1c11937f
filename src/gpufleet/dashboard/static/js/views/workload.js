// One workload: details, pending scheduling messages, pods (and one pod's GPU charts), the
// history of phase changes with Kubernetes events inline, and metric charts.

import { get } from "../api.js";
import { detailList, errorLine, h, phaseBadge, replace, table } from "../dom.js";
import { age, duration, number, when } from "../format.js";
import { clusterLabel, clusterNames } from "../inventory.js";
import { INFERENCE_CHARTS, INFERENCE_TYPES, POD_CHARTS, WORKLOAD_CHARTS } from "../metric-charts.js";
import { DEFAULT_RANGE, latestOnly, metrics, rangeButtons } from "../metric-panel.js";
import { nodeHref } from "../router.js";
import { requestedGpus } from "./workloads.js";

const HISTORY_PAGE = 20;

function details(w, clusters) {
  const pairs = [
    ["Deleted", when(w.deletedAt)],
    ["ID", w.id], ["Type", w.type], ["Phase message", w.phaseMessage], ["Project", w.projectName],
    ["Department", w.departmentName], ["Cluster", clusterLabel(clusters, w.clusterId)], ["Namespace", w.namespace],
    ["Nodepools", (w.currentNodePools || []).join(", ")], ["Submitted by", w.submittedBy],
    ["Created", when(w.createdAt)], ["Phase updated", when(w.phaseUpdatedAt)], ["Completed", when(w.completedAt)],
    ["GPUs requested", requestedGpus(w)], ["GPUs allocated", number(w.allocatedResources?.gpu ?? "")], ["Running pods", w.runningPods],
    ["Pending in total", duration(w.totalPendingTimeSeconds)], ["Running in total", duration(w.totalRunningTimeSeconds)],
    ["Priority", w.priorityClassName ?? w.priority], ["Category", w.category],
  ];
  return detailList("workload-details", pairs);
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
      phaseBadge(p.k8sPhase), p.nodeName ? h("a", { href: nodeHref(p.clusterId, p.nodeName), "data-node": p.nodeName }, p.nodeName) : "",
      number(p.allocatedResources?.gpu ?? 0), age(p.createdAt),
    ]);
    replace(container, table("pods", ["Pod", "Phase", "Node", "GPUs", "Age"], rows, "No pods reported."));
  } catch (error) {
    if (isCurrent()) replace(container, errorLine(error));
  }
}

export async function renderWorkload(view, id, isCurrent) {
  replace(view, h("p", { class: "muted" }, "Loading…"));
  let workload;
  let clusters;
  try {
    [workload, clusters] = await Promise.all([
      get(`/api/v1/workloads/${encodeURIComponent(id)}`).then((r) => r.body),
      clusterNames().catch(() => new Map()),
    ]);
  } catch (error) {
    if (isCurrent()) replace(view, h("h1", {}, "Workload"), errorLine(error), h("a", { href: "#/workloads" }, "Back to workloads"));
    return;
  }
  if (!isCurrent()) return;
  const historyBox = h("div");
  const podsBox = h("div");
  const chartsBox = h("div", { id: "metric-charts" });
  const inference = INFERENCE_TYPES.has(workload.type);
  const inferenceBox = h("div", { id: "inference-charts" });
  const podTitle = h("h2", {}, "Pod GPUs");
  const podChartsBox = h("div", { id: "pod-charts" }, h("p", { class: "muted" }, "Choose a pod above to see its GPUs."));
  const base = `/api/v1/workloads/${encodeURIComponent(workload.id)}`;
  const nextWorkloadCharts = latestOnly(isCurrent);
  const nextInferenceCharts = latestOnly(isCurrent);
  const nextPodCharts = latestOnly(isCurrent);
  let range = DEFAULT_RANGE;
  let chosen = null;
  const drawPod = () => {
    if (!chosen) return;
    replace(podTitle, `Pod GPUs: ${chosen.name}`);
    metrics(podChartsBox, `${base}/pods/${encodeURIComponent(chosen.id)}/metrics`, POD_CHARTS, range, nextPodCharts(),
      "data-pod-metric");
  };
  const choosePod = (pod) => {
    chosen = pod;
    for (const b of podsBox.querySelectorAll("button[data-pod]")) b.classList.toggle("active", b.dataset.pod === pod.id);
    drawPod();
  };
  const drawWorkload = () => Promise.all([
    metrics(chartsBox, `${base}/metrics`, WORKLOAD_CHARTS, range, nextWorkloadCharts()),
    inference ? metrics(inferenceBox, `${base}/metrics`, INFERENCE_CHARTS, range, nextInferenceCharts()) : null,
  ]);
  const ranges = rangeButtons((choice) => {
    range = choice;
    drawWorkload();
    drawPod();
  });
  const deleted = workload.deletedAt
    ? h("p", { class: "notice", id: "deleted-notice", role: "status" },
      `This workload was deleted on ${when(workload.deletedAt)}; what follows is what was last reported.`)
    : null;
  replace(view,
    h("p", {}, h("a", { href: workload.deletedAt ? "#/workloads?deleted=true" : "#/workloads" }, "‹ Workloads")),
    h("h1", { id: "workload-name" }, workload.name, phaseBadge(workload.phase),
      workload.deletedAt ? h("span", { class: "badge deleted", id: "deleted-badge" }, "Deleted") : null),
    deleted,
    h("div", { class: "grid" },
      h("section", { class: "panel" }, h("h2", {}, "Details"), details(workload, clusters)),
      h("section", { class: "panel" },
        h("h2", {}, "Pending scheduling messages"), schedulingMessages(workload),
        h("h2", {}, "Pods"), podsBox)),
    h("section", { class: "panel" },
      h("div", { class: "filters" }, h("h2", {}, "Metrics"), ranges), chartsBox),
    inference ? h("section", { class: "panel", id: "inference" }, h("h2", {}, "Inference (NIM and vLLM)"), inferenceBox) : null,
    h("section", { class: "panel", id: "pod-gpus" }, podTitle, podChartsBox),
    h("section", { class: "panel" }, h("h2", {}, "History and events"), historyBox));
  await Promise.all([
    history(historyBox, workload.id, isCurrent),
    pods(podsBox, workload.id, isCurrent, choosePod),
    drawWorkload(),
  ]);
}
