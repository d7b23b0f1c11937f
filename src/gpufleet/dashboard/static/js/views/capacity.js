// Capacity: per cluster and node pool, total / allocated / free / idle GPUs and nodes not
// ready, and a grid of the nodes coloured by how much of each is allocated and idle.

import { get } from "../api.js";
import { h, replace } from "../dom.js";
import { every, grouped } from "../inventory.js";

const NODE_TELEMETRY = "/api/v1/nodes/telemetry";
const POOL_TYPES = ["TOTAL_GPUS", "ALLOCATED_GPUS", "FREE_GPUS", "IDLE_ALLOCATED_GPUS"];
const HEADERS = ["Node pool", "Total GPUs", "Allocated", "Free", "Idle allocated", "Nodes", "Not ready"];

function stateBadge(cluster) {
  const state = cluster.status?.state ?? "Unknown";
  return h("span", { class: `badge state-${state}`, "data-state": state }, state);
}

// The allocation level of a node (0-4) names its colour; idle allocated GPUs add a mark.
function nodeCell(node, allocated, idle) {
  const total = node.gpuInfo?.gpuCount ?? 0;
  const ratio = total > 0 ? allocated / total : 0;
  const level = total > 0 ? Math.min(4, Math.ceil(ratio * 4)) : "none";
  const classes = ["node", `level-${level}`];
  if (node.status !== "Ready") classes.push("not-ready");
  if (idle > 0) classes.push("idle");
  const title = `${node.name} (${node.status}): ${allocated} of ${total} GPUs allocated` +
    (idle > 0 ? `, ${idle} idle` : "");
  return h("span", {
    class: classes.join(" "), title, dataset: { node: node.name, allocated: String(allocated), total: String(total) },
  });
}

function poolRow(clusterId, pool, figures, poolNodes) {
  const value = (type) => figures[type].get(`${clusterId}/${pool}`) ?? 0;
  const notReady = poolNodes.filter((n) => n.status !== "Ready").length;
  return h("tr", { dataset: { pool } },
    h("td", {}, pool),
    POOL_TYPES.map((type) => h("td", { class: "num", dataset: { type } }, String(value(type)))),
    h("td", { class: "num" }, String(poolNodes.length)),
    h("td", { class: `num${notReady ? " error" : ""}`, dataset: { type: "NOT_READY" } }, String(notReady)));
}

function clusterSection(cluster, nodes, figures, perNode) {
  const mine = nodes.filter((n) => n.clusterUuid === cluster.uuid);
  const pools = [...new Set(mine.map((n) => n.nodePool))].sort();
  const grid = pools.map((pool) => h("div", { class: "node-pool" },
    h("h3", {}, pool),
    h("div", { class: "node-grid", dataset: { pool } },
      mine.filter((n) => n.nodePool === pool).map((n) => nodeCell(
        n,
        perNode.allocated.get(`${cluster.uuid}/${n.name}`) ?? 0,
        perNode.idle.get(`${cluster.uuid}/${n.name}`) ?? 0,
      )))));
  return h("section", { class: "panel cluster", dataset: { cluster: cluster.uuid } },
    h("h2", {}, cluster.name, " ", stateBadge(cluster)),
    mine.length === 0
      ? h("p", { class: "muted" }, "No nodes reported.")
      : [
          h("table", { class: "data pools" },
            h("thead", {}, h("tr", {}, HEADERS.map((title, i) => h("th", { class: i ? "num" : "" }, title)))),
            h("tbody", {}, pools.map((pool) => poolRow(cluster.uuid, pool, figures, mine.filter((n) => n.nodePool === pool))))),
          grid,
        ]);
}

const LEGEND = h("p", { class: "legend muted" },
  "Each square is a node: darker means more of its GPUs allocated; a red corner marks idle allocated GPUs; ",
  "a grey, struck square is not ready.");

export async function renderCapacity(view, isCurrent) {
  replace(view, h("h1", {}, "Capacity"), h("p", { class: "muted" }, "Loading…"));
  const byPool = ["ClusterId", "Nodepool"];
  const byNode = ["ClusterId", "Node"];
  const [clusters, nodes, ...figures] = await Promise.all([
    get("/api/v1/clusters").then((r) => r.body),
    every("/api/v1/nodes", "nodes"),
    ...POOL_TYPES.map((type) => grouped(NODE_TELEMETRY, type, byPool)),
    grouped(NODE_TELEMETRY, "ALLOCATED_GPUS", byNode),
    grouped(NODE_TELEMETRY, "IDLE_ALLOCATED_GPUS", byNode),
  ]);
  if (!isCurrent()) return;
  const poolFigures = Object.fromEntries(POOL_TYPES.map((type, i) => [type, figures[i]]));
  const perNode = { allocated: figures[POOL_TYPES.length], idle: figures[POOL_TYPES.length + 1] };
  replace(view,
    h("h1", {}, "Capacity"),
    LEGEND.cloneNode(true),
    clusters.length === 0 ? h("p", { class: "muted" }, "No clusters.") : null,
    clusters.map((cluster) => clusterSection(cluster, nodes, poolFigures, perNode)));
}
