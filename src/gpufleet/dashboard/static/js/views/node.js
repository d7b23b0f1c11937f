// One node: its facts and figures, its GPUs with their utilisation and memory now, the pods
// bound to it (with their workloads), its conditions and taints, and its metric charts.

import { get } from "../api.js";
import { detailList, errorLine, h, phaseBadge, replace, table } from "../dom.js";
import { age, bytes, number, when, withUnit } from "../format.js";
import { clusterLabel, clusterNames, nodeKey, perNode, takesWork } from "../inventory.js";
import { NODE_CHARTS } from "../metric-charts.js";
import { DEFAULT_RANGE, latestOnly, metrics, rangeButtons } from "../metric-panel.js";
import { nodesHref, stateBadges } from "./nodes.js";

// GPU memory in use is the Nodes view's figure (the same telemetry), so the two pages agree.
const TYPES = [
  "ALLOCATED_GPUS", "IDLE_ALLOCATED_GPUS", "TOTAL_GPU_MEMORY_BYTES", "USED_GPU_MEMORY_BYTES",
  "TOTAL_CPU_CORES", "ALLOCATED_CPU_CORES", "TOTAL_CPU_MEMORY_BYTES", "ALLOCATED_CPU_MEMORY_BYTES",
];
const GPU_NOW = ["GPU_UTILIZATION_PER_GPU", "GPU_MEMORY_USAGE_BYTES_PER_GPU"];
// "Now" for a GPU is its latest sample of the last 10 minutes, in one-minute points.
const NOW_SECONDS = 600;
const PODS_LIMIT = 500;

// The body of a GET, or undefined when it failed (its message shown in ``container``) or the
// page has moved on.
async function answer(container, isCurrent, path, params) {
  try {
    const { body } = await get(path, params);
    return isCurrent() ? body : undefined;
  } catch (error) {
    if (isCurrent()) replace(container, errorLine(error));
    return undefined;
  }
}

function details(node, figures, clusters) {
  const gpus = node.gpuInfo?.gpuCount ?? 0;
  const allocated = figures.ALLOCATED_GPUS;
  const cpu = (used, of, unit) => `${withUnit(used, unit)} of ${withUnit(of, unit)}`;
  return detailList("node-details", [
    ["Cluster", clusterLabel(clusters, node.clusterUuid)],
    ["Node pool", h("a", { href: nodesHref({ cluster: node.clusterUuid, pool: node.nodePool }) }, node.nodePool)],
    ["State", stateBadges(node)],
    ["Takes new work", takesWork(node) ? "yes" : "no"],
    ["GPU model", node.gpuInfo?.gpuType],
    ["GPUs", number(gpus)],
    ["GPUs allocated", number(allocated)],
    ["GPUs free", number(gpus - allocated)],
    ["Idle allocated GPUs", number(figures.IDLE_ALLOCATED_GPUS)],
    ["GPU memory", figures.TOTAL_GPU_MEMORY_BYTES ? bytes(figures.TOTAL_GPU_MEMORY_BYTES) : null],
    ["GPU memory used", gpus ? bytes(figures.USED_GPU_MEMORY_BYTES) : null],
    ["CPU cores allocated", cpu(figures.ALLOCATED_CPU_CORES, figures.TOTAL_CPU_CORES, "cores")],
    ["Memory allocated", cpu(figures.ALLOCATED_CPU_MEMORY_BYTES, figures.TOTAL_CPU_MEMORY_BYTES, "bytes")],
    ["NVLink domain", node.nvLinkDomainUid], ["NVLink clique", node.nvLinkCliqueId],
    ["ID", node.id], ["Created", when(node.createdAt)], ["Updated", when(node.updatedAt)],
  ]);
}

// The latest value of each GPU of a per-GPU type: Map gpu index -> value.
function latestByGpu(body, type) {
  const latest = new Map();
  for (const m of body.measurements || []) {
    const last = m.type === type ? (m.values || []).at(-1) : undefined;
    if (last && m.labels?.gpu !== undefined) latest.set(m.labels.gpu, Number(last.value));
  }
  return latest;
}

// One row per GPU of the node (the model is the node's), with its latest utilisation and
// memory used; a GPU nothing reports on shows a dash.
async function gpus(container, node, memoryPerGpu, isCurrent) {
  const count = node.gpuInfo?.gpuCount ?? 0;
  if (!count) {
    replace(container, h("p", { class: "muted" }, "This node has no GPUs."));
    return;
  }
  const end = new Date();
  const start = new Date(end.getTime() - NOW_SECONDS * 1000);
  const body = await answer(container, isCurrent, `/api/v1/nodes/${encodeURIComponent(node.id)}/metrics`, {
    metricType: GPU_NOW.join(","), start: start.toISOString(), end: end.toISOString(), numberOfSamples: NOW_SECONDS / 60,
  });
  if (!body) return;
  const [utilisation, memory] = GPU_NOW.map((type) => latestByGpu(body, type));
  const shown = (value, unit) => (value === undefined ? "–" : withUnit(value, unit));
  const rows = Array.from({ length: count }, (_, i) => String(i)).map((gpu) => [
    `GPU ${gpu}`, memoryPerGpu ? bytes(memoryPerGpu) : "–",
    shown(utilisation.get(gpu), "%"), shown(memory.get(gpu), "bytes"),
  ]);
  replace(container, table("node-gpus", ["GPU", "Memory", "Utilisation now", "Memory used now"], rows, ""));
}

// The pods bound to the node that have not finished, with the workloads they belong to: only
// those the caller may see (the pods API applies its projects' scope).
async function pods(container, node, isCurrent) {
  const body = await answer(container, isCurrent, "/api/v1/workloads/pods", {
    filterBy: [`clusterId==${node.clusterUuid}`, `nodeName==${node.name}`],
    completed: "false", verbosity: "full", limit: PODS_LIMIT,
  });
  if (!body) return;
  const rows = body.pods.map((p) => [
    p.name,
    h("a", { href: `#/workloads/${encodeURIComponent(p.workloadId)}`, "data-workload": p.workloadId }, p.workloadName ?? p.workloadId),
    p.projectName ?? "", phaseBadge(p.k8sPhase), number(p.allocatedResources?.gpu ?? 0), age(p.createdAt),
  ]);
  replace(container,
    table("node-pods", ["Pod", "Workload", "Project", "Phase", "GPUs", "Age"], rows, "No pods you may see run on this node."),
    body.next !== undefined ? h("p", { class: "muted" }, `The first ${PODS_LIMIT} pods.`) : null);
}

function conditions(node) {
  const rows = (node.conditions || []).map((c) => [c.type, c.reason, c.message ?? ""]);
  const taints = (node.taints || []).map((t) => [`${t.key}${t.value ? `=${t.value}` : ""}`, t.effect]);
  return [
    h("h2", {}, "Conditions"), table("node-conditions", ["Type", "Reason", "Message"], rows, "No conditions reported."),
    h("h2", {}, "Taints"), table("node-taints", ["Taint", "Effect"], taints, "No taints."),
  ];
}

async function findNode(clusterId, name) {
  const { body } = await get(`/api/v1/clusters/${encodeURIComponent(clusterId)}/nodes`, { filterBy: `name==${name}` });
  return body.nodes.find((n) => n.name === name) ?? null;
}

export async function renderNode(view, clusterId, name, isCurrent) {
  replace(view, h("p", { class: "muted" }, "Loading…"));
  const back = h("p", {}, h("a", { href: "#/nodes" }, "‹ Nodes"));
  let node;
  let clusters;
  try {
    [node, clusters] = await Promise.all([findNode(clusterId, name), clusterNames().catch(() => new Map())]);
  } catch (error) {
    if (isCurrent()) replace(view, back, h("h1", {}, name), errorLine(error));
    return;
  }
  if (!isCurrent()) return;
  if (!node) {
    replace(view, back, h("h1", {}, name), h("p", { class: "error", role: "alert" }, "No such node in this cluster."));
    return;
  }
  const figuresOf = await perNode(TYPES, { clusterId: node.clusterUuid, nodepoolName: node.nodePool });
  if (!isCurrent()) return;
  const figures = Object.fromEntries(TYPES.map((type) => [type, figuresOf[type].get(nodeKey(node)) ?? 0]));
  const gpuCount = node.gpuInfo?.gpuCount ?? 0;
  const gpusBox = h("div", { id: "node-gpus-box" }, h("p", { class: "muted" }, "Loading…"));
  const podsBox = h("div", { id: "node-pods-box" }, h("p", { class: "muted" }, "Loading…"));
  const chartsBox = h("div", { id: "metric-charts" });
  const path = `/api/v1/nodes/${encodeURIComponent(node.id)}/metrics`;
  const nextCharts = latestOnly(isCurrent);
  const draw = (range) => metrics(chartsBox, path, NODE_CHARTS, range, nextCharts());
  replace(view,
    back,
    h("h1", { id: "node-name" }, node.name, stateBadges(node)),
    h("div", { class: "grid" },
      h("section", { class: "panel" }, h("h2", {}, "Details"), details(node, figures, clusters)),
      h("section", { class: "panel" }, h("h2", {}, "GPUs"), gpusBox, conditions(node))),
    h("section", { class: "panel" }, h("h2", {}, "Pods on this node"), podsBox),
    h("section", { class: "panel" },
      h("div", { class: "filters" }, h("h2", {}, "Metrics"), rangeButtons(draw)), chartsBox));
  const memoryPerGpu = gpuCount ? figures.TOTAL_GPU_MEMORY_BYTES / gpuCount : 0;
  await Promise.all([gpus(gpusBox, node, memoryPerGpu, isCurrent), pods(podsBox, node, isCurrent), draw(DEFAULT_RANGE)]);
}
