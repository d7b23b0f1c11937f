// Reading whole collections and grouped telemetry of the inventory APIs.

import { get } from "./api.js";

// Every item of a paged list (offset/limit, `next` while more follow).
export async function every(path, key, params = {}) {
  const items = [];
  let offset = 0;
  for (;;) {
    const { body } = await get(path, { ...params, offset, limit: 500 });
    items.push(...body[key]);
    if (body.next === undefined) return items;
    offset = body.next;
  }
}

export const NODE_TELEMETRY = "/api/v1/nodes/telemetry";

// One telemetry type grouped by one or two keys, as a Map "first/second" -> number.
export async function grouped(path, telemetryType, groupBy, params = {}) {
  const { body } = await get(path, { ...params, telemetryType, groupBy: groupBy.join(",") });
  const values = new Map();
  for (const item of body.values || []) {
    const key = (item.groups || []).map((g) => g.value).join("/");
    values.set(key, Number(item.value));
  }
  return values;
}

// A cordoned node (`kubectl cordon`: spec.unschedulable) stays Ready; Kubernetes marks it with
// this taint, which the agent reports with the node's others, and schedules nothing new on it.
const UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable";

export function isCordoned(node) {
  return (node.taints || []).some((taint) => taint.key === UNSCHEDULABLE_TAINT);
}

// Whether the scheduler may place new work on the node: ready and not cordoned.
export function takesWork(node) {
  return node.status === "Ready" && !isCordoned(node);
}

// A node's key in telemetry grouped by ClusterId and Node: "cluster uuid/node name".
export function nodeKey(node) {
  return `${node.clusterUuid}/${node.name}`;
}

// Node telemetry of each type grouped by cluster and node: {type: Map nodeKey -> number}.
export async function perNode(types, params = {}) {
  const maps = await Promise.all(types.map((type) => grouped(NODE_TELEMETRY, type, ["ClusterId", "Node"], params)));
  return Object.fromEntries(types.map((type, i) => [type, maps[i]]));
}

export const SCHEDULABLE_NOTE = "Free GPUs on nodes that can take work: ready and not cordoned";

// The free GPUs new work can be placed on: on each node that takes work, its GPUs minus its
// allocation. FREE_GPUS counts cordoned and not-ready nodes too.
export function schedulableFree(nodes, allocatedOf) {
  return nodes.filter(takesWork).reduce((sum, n) => sum + (n.gpuInfo?.gpuCount ?? 0) - allocatedOf(n), 0);
}

// The sum of a grouped answer's values (every group together).
export function total(values) {
  let sum = 0;
  for (const value of values.values()) sum += value;
  return sum;
}

// Sets a width in percent through the style object (a strict CSP refuses style attributes).
export function widthPercent(node, percent) {
  node.style.width = `${Math.max(0, Math.min(100, percent))}%`;
  return node;
}

// Cluster names by uuid, asked once per sign-in: views show names where the API documents ids.
let clusters;
window.addEventListener("gpufleet:signed-out", () => { clusters = undefined; });

export async function clusterNames() {
  clusters ??= get("/api/v1/clusters").then(
    ({ body }) => new Map(body.map((c) => [c.uuid, c.name])),
    (error) => { clusters = undefined; throw error; },
  );
  return clusters;
}

// A cluster's name, or its uuid when the caller may not see the cluster.
export function clusterLabel(names, uuid) {
  return (uuid && names?.get(uuid)) || uuid || "";
}
