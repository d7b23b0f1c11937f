// Capacity: per cluster and node pool, total / allocated / free / idle GPUs, the free GPUs on
// nodes that can take work, the nodes not ready and cordoned, and a grid of the nodes coloured
// by how much of each is allocated and idle, with links to each cluster's and pool's usage.

import { get } from "../api.js";
import { h, replace } from "../dom.js";
import { NODE_TELEMETRY, SCHEDULABLE_NOTE, every, grouped, isCordoned, nodeKey, perNode, schedulableFree } from "../inventory.js";
import { nodeHref } from "../router.js";
import { nodesHref } from "./nodes.js";
import { usageHref } from "./usage.js";

const POOL_TYPES = ["TOTAL_GPUS", "ALLOCATED_GPUS", "FREE_GPUS", "IDLE_ALLOCATED_GPUS"];
const HEADERS = [
  ["Node pool"], ["Total GPUs"], ["Allocated"], ["Free"], ["Schedulable free", SCHEDULABLE_NOTE],
  ["Idle allocated"], ["Nodes"], ["Not ready"], ["Cordoned", "Nodes marked unschedulable (kubectl cordon)"],
];

function stateBadge(cluster) {
  const state = cluster.status?.state ?? "Unknown";
  return h("span", { class: `badge state-${state}`, "data-state": state }, state);
}

// The allocation level of a node (0-4) names its colour; idle allocated GPUs add a mark. Each
// square links to the node's page.
function nodeCell(node, allocated, idle) {
  const total = node.gpuInfo?.gpuCount ?? 0;
  const ratio = total > 0 ? allocated / total : 0;
  const level = total > 0 ? Math.min(4, Math.ceil(ratio * 4)) : "none";
  const classes = ["node", `level-${level}`];
  const cordoned = isCordoned(node);
  if (node.status !== "Ready") classes.push("not-ready");
  if (cordoned) classes.push("cordoned");
  if (idle > 0) classes.push("idle");
  const state = cordoned ? `${node.status}, cordoned` : node.status;
  const title = `${node.name} (${state}): ${allocated} of ${total} GPUs allocated` +
    (idle > 0 ? `, ${idle} idle` : "");
  return h("a", {
    class: classes.join(" "), title, href: nodeHref(node.clusterUuid, node.name), "aria-label": node.name, dataset: { node: node.name, allocated: String(allocated), total: String(total) },
  });
}

// Six decimals at most, as the API writes the telemetry beside it: fractions of GPUs add up
// without float noise.
function figure(value) {
  return String(Math.round(value * 1e6) / 1e6);
}

// FREE_GPUS counts every node's GPUs minus its allocation, cordoned and not ready ones too;
// the schedulable free GPUs count the same on the nodes the scheduler can place new work on.
function poolRow(clusterId, pool, figures, poolNodes, allocatedOf) {
  const value = (type) => figures[type].get(`${clusterId}/${pool}`) ?? 0;
  const notReady = poolNodes.filter((n) => n.status !== "Ready").length;
  const cordoned = poolNodes.filter(isCordoned).length;
  const schedulable = schedulableFree(poolNodes, allocatedOf);
  const cell = (type, text, flagged = false) =>
    h("td", { class: `num${flagged ? " error" : ""}`, dataset: { type } }, text);
  const listed = (status) => nodesHref({ cluster: clusterId, pool, status });
  return h("tr", { dataset: { pool } },
    h("td", {}, h("a", { href: listed() }, pool)),
    ["TOTAL_GPUS", "ALLOCATED_GPUS", "FREE_GPUS"].map((type) => cell(type, String(value(type)))),
    cell("SCHEDULABLE_FREE_GPUS", figure(schedulable)),
    cell("IDLE_ALLOCATED_GPUS", String(value("IDLE_ALLOCATED_GPUS"))),
    h("td", { class: "num" }, h("a", { href: listed() }, String(poolNodes.length))),
    cell("NOT_READY", h("a", { href: listed("not-ready") }, String(notReady)), notReady > 0),
    cell("CORDONED", h("a", { href: listed("cordoned") }, String(cordoned))));
}

// The Usage view of the cluster and of each of its pools (GPU-hours over time).
function usageLinks(cluster, pools) {
  const link = (unit, text) => h("a", { href: usageHref(unit), dataset: { usage: unit } }, text);
  return h("p", { class: "usage-links" }, "Usage over time: ",
    link(`cluster:${cluster.uuid}`, "the cluster"),
    pools.map((pool) => [" · ", link(`nodepool:${cluster.uuid}/${pool}`, pool)]));
}

function clusterSection(cluster, nodes, figures, byNode) {
  const mine = nodes.filter((n) => n.clusterUuid === cluster.uuid);
  const allocatedOf = (n) => byNode.ALLOCATED_GPUS.get(nodeKey(n)) ?? 0;
  const pools = [...new Set(mine.map((n) => n.nodePool))].sort();
  const grid = pools.map((pool) => h("div", { class: "node-pool" },
    h("h3", {}, pool),
    h("div", { class: "node-grid", dataset: { pool } },
      mine.filter((n) => n.nodePool === pool).map((n) => nodeCell(
        n,
        allocatedOf(n),
        byNode.IDLE_ALLOCATED_GPUS.get(nodeKey(n)) ?? 0,
      )))));
  return h("section", { class: "panel cluster", dataset: { cluster: cluster.uuid } },
    h("h2", {}, cluster.name, " ", stateBadge(cluster)),
    usageLinks(cluster, pools),
    mine.length === 0
      ? h("p", { class: "muted" }, "No nodes reported.")
      : [
          h("table", { class: "data pools" },
            h("thead", {}, h("tr", {}, HEADERS.map(([text, title], i) => h("th", { class: i ? "num" : "", title }, text)))),
            h("tbody", {}, pools.map((pool) =>
              poolRow(cluster.uuid, pool, figures, mine.filter((n) => n.nodePool === pool), allocatedOf)))),
          grid,
        ]);
}

const LEGEND = h("p", { class: "legend muted" },
  "Each square is a node: darker means more of its GPUs allocated; a red corner marks idle allocated GPUs; ",
  "a grey, struck square is not ready; a square with a dashed amber outline is cordoned (takes no new work); ",
  "each opens its node's page. ",
  "Schedulable free: the free GPUs on nodes that are ready and not cordoned.");

export async function renderCapacity(view, isCurrent) {
  replace(view, h("h1", {}, "Capacity"), h("p", { class: "muted" }, "Loading…"));
  const byPool = ["ClusterId", "Nodepool"];
  const [clusters, nodes, byNode, ...figures] = await Promise.all([
    get("/api/v1/clusters").then((r) => r.body),
    every("/api/v1/nodes", "nodes"),
    perNode(["ALLOCATED_GPUS", "IDLE_ALLOCATED_GPUS"]),
    ...POOL_TYPES.map((type) => grouped(NODE_TELEMETRY, type, byPool)),
  ]);
  if (!isCurrent()) return;
  const poolFigures = Object.fromEntries(POOL_TYPES.map((type, i) => [type, figures[i]]));
  replace(view,
    h("h1", {}, "Capacity"),
    LEGEND.cloneNode(true),
    clusters.length === 0 ? h("p", { class: "muted" }, "No clusters.") : null,
    clusters.map((cluster) => clusterSection(cluster, nodes, poolFigures, byNode)));
}
