// Nodes: every node of the clusters the caller sees, with its state, GPUs, how full they are
// and their memory in use; filtered by cluster, node pool, state and name, sorted by any column.
// The filters and the sort live in the address bar.

import { figure, h, replace } from "../dom.js";
import { age, bytes, number, when } from "../format.js";
import {
  clusterLabel, clusterNames, every, isCordoned, nodeKey, perNode, schedulableFree, takesWork,
} from "../inventory.js";
import { navigate, nodeHref } from "../router.js";

// Allocation, and the one use figure telemetry has per node: its GPUs' memory in use now. A
// node's page charts its GPUs' utilisation and memory over time.
const TYPES = ["ALLOCATED_GPUS", "IDLE_ALLOCATED_GPUS"];
const MEMORY_TYPES = ["USED_GPU_MEMORY_BYTES", "TOTAL_GPU_MEMORY_BYTES"];
const UNKNOWN = "–";
// The states a node may be filtered by: a cordoned node may be Ready or not.
const STATES = [
  ["", "Any state"],
  ["schedulable", "Takes work (ready, not cordoned)"],
  ["cordoned", "Cordoned"],
  ["not-ready", "Not ready"],
];
const IN_STATE = {
  schedulable: takesWork,
  cordoned: isCordoned,
  "not-ready": (node) => node.status !== "Ready",
};

// The Nodes view with these filters (cluster uuid, pool, state), as a link.
export function nodesHref(filters = {}) {
  const params = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
  return `#/nodes${[...params].length ? `?${params}` : ""}`;
}

// A node's state as badges: its Ready condition, and "Cordoned" when it takes no new work.
export function stateBadges(node) {
  return [
    h("span", { class: `badge status-${node.status}`, "data-status": node.status }, node.status),
    isCordoned(node) ? h("span", { class: "badge cordoned", "data-cordoned": "" }, "Cordoned") : null,
  ];
}

// Each column: its title, the value it sorts by and how a cell shows it. A column with ``num``
// sorts largest first on its first click.
const COLUMNS = [
  {
    key: "name", title: "Node", value: (r) => r.node.name,
    cell: (r) => h("a", { href: nodeHref(r.node.clusterUuid, r.node.name) }, r.node.name),
  },
  { key: "cluster", title: "Cluster", value: (r) => r.cluster, cell: (r) => r.cluster },
  { key: "pool", title: "Node pool", value: (r) => r.node.nodePool, cell: (r) => r.node.nodePool },
  { key: "status", title: "State", value: (r) => `${r.node.status}${isCordoned(r.node) ? " cordoned" : ""}`, cell: (r) => stateBadges(r.node) },
  { key: "gpuType", title: "GPU model", value: (r) => r.node.gpuInfo?.gpuType ?? "", cell: (r) => r.node.gpuInfo?.gpuType ?? "–" },
  { key: "gpus", title: "GPUs", num: true, value: (r) => r.gpus, cell: (r) => number(r.gpus) },
  { key: "allocated", title: "Allocated", num: true, value: (r) => r.allocated, cell: (r) => number(r.allocated) },
  { key: "free", title: "Free", num: true, value: (r) => r.free, cell: (r) => number(r.free) },
  {
    key: "idle", title: "Idle allocated", num: true, value: (r) => r.idle,
    cell: (r) => (r.idle > 0 ? h("span", { class: "error" }, number(r.idle)) : "0"),
  },
  {
    key: "memory", title: "GPU memory", num: true, value: (r) => r.memory ?? -1,
    cell: (r) => (r.memory ? bytes(r.memory) : UNKNOWN),
  },
  {
    key: "memoryUsed", title: "GPU memory used", num: true, value: (r) => r.memoryUsed ?? -1,
    cell: (r) => (r.memoryUsed === null ? UNKNOWN : bytes(r.memoryUsed)),
  },
  {
    key: "age", title: "Age", value: (r) => -Date.parse(r.node.createdAt),
    cell: (r) => h("span", { title: when(r.node.createdAt) }, age(r.node.createdAt)),
  },
];

function state(params) {
  const sort = COLUMNS.some((c) => c.key === params.get("sort")) ? params.get("sort") : "name";
  return {
    cluster: params.get("cluster") || "",
    pool: params.get("pool") || "",
    status: IN_STATE[params.get("status")] ? params.get("status") : "",
    search: params.get("q") || "",
    sort,
    order: params.get("order") === "desc" ? "desc" : "asc",
  };
}

function go(next) {
  const params = new URLSearchParams();
  for (const [key, name] of [["cluster", "cluster"], ["pool", "pool"], ["status", "status"], ["search", "q"]]) {
    if (next[key]) params.set(name, next[key]);
  }
  if (next.sort !== "name" || next.order !== "asc") {
    params.set("sort", next.sort);
    params.set("order", next.order);
  }
  navigate("nodes", params);
}

// What the table shows of a node: its own fields and its figures from the nodes telemetry.
// GPU memory is null (a dash) on a node without GPUs, and when its telemetry could not be read;
// a node that did not report its GPUs' memory has no total.
function rowOf(node, figures, memory, clusters) {
  const key = nodeKey(node);
  const gpus = node.gpuInfo?.gpuCount ?? 0;
  const allocated = figures.ALLOCATED_GPUS.get(key) ?? 0;
  const measured = gpus > 0 && memory !== null;
  return {
    node, gpus, allocated, free: gpus - allocated,
    cluster: clusterLabel(clusters, node.clusterUuid),
    idle: figures.IDLE_ALLOCATED_GPUS.get(key) ?? 0,
    memory: measured ? memory.TOTAL_GPU_MEMORY_BYTES.get(key) || null : null,
    memoryUsed: measured ? memory.USED_GPU_MEMORY_BYTES.get(key) ?? 0 : null,
  };
}

function matches(row, current) {
  const { node } = row;
  return (!current.cluster || node.clusterUuid === current.cluster)
    && (!current.pool || node.nodePool === current.pool)
    && (!current.status || IN_STATE[current.status](node))
    && (!current.search || node.name.toLowerCase().includes(current.search.toLowerCase()));
}

function compare(a, b) {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

// Sorted by the chosen column, then by cluster and name, so equal values keep a stable order.
function sorted(rows, current) {
  const column = COLUMNS.find((c) => c.key === current.sort);
  const sign = current.order === "desc" ? -1 : 1;
  return [...rows].sort((a, b) => sign * compare(column.value(a), column.value(b))
    || compare(a.cluster, b.cluster) || compare(a.node.name, b.node.name));
}

function select(name, label, value, options, onChange) {
  return h("select", { name, "aria-label": label, onchange: (e) => onChange(e.target.value) },
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}

function filters(current, nodes, clusters) {
  const clusterIds = [...new Set(nodes.map((n) => n.clusterUuid))]
    .sort((a, b) => compare(clusterLabel(clusters, a), clusterLabel(clusters, b)));
  const pools = [...new Set(nodes.filter((n) => !current.cluster || n.clusterUuid === current.cluster)
    .map((n) => n.nodePool))].sort(compare);
  if (current.pool && !pools.includes(current.pool)) pools.push(current.pool);
  const search = h("input", { type: "search", name: "search", placeholder: "Node name…", value: current.search });
  const form = h("form", { class: "filter-row" }, search);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go({ ...current, search: search.value.trim() });
  });
  return h("div", { class: "filters", id: "node-filters" },
    select("cluster", "Cluster", current.cluster,
      [["", "All clusters"], ...clusterIds.map((id) => [id, clusterLabel(clusters, id)])],
      (cluster) => go({ ...current, cluster, pool: "" })),
    select("pool", "Node pool", current.pool, [["", "All node pools"], ...pools.map((p) => [p, p])],
      (pool) => go({ ...current, pool })),
    select("status", "State", current.status, STATES, (status) => go({ ...current, status })),
    form);
}

function header(current) {
  return h("tr", {}, COLUMNS.map((column) => {
    const sorted = column.key === current.sort ? ` sorted-${current.order}` : "";
    const first = column.num ? "desc" : "asc";
    const order = column.key !== current.sort ? first : current.order === "asc" ? "desc" : "asc";
    return h("th", {
      class: `sortable${sorted}${column.num ? " num" : ""}`, "data-sort": column.key,
      onclick: () => go({ ...current, sort: column.key, order }),
    }, column.title);
  }));
}

// The shown nodes' GPUs: total, allocated, free, the free ones new work can take, and their
// memory in use of their memory.
function summary(rows, memory) {
  const nodes = rows.map((r) => r.node);
  const sum = (field) => rows.reduce((total, r) => total + (r[field] ?? 0), 0);
  const allocated = new Map(rows.map((r) => [r.node, r.allocated]));
  const memoryUsed = memory === null ? UNKNOWN : `${bytes(sum("memoryUsed"))} of ${bytes(sum("memory"))}`;
  return h("div", { class: "figures", id: "nodes-summary" },
    figure("nodes", "Nodes", number(rows.length)),
    figure("gpus", "GPUs", number(sum("gpus"))),
    figure("allocated", "Allocated", number(sum("allocated"))),
    figure("free", "Free", number(sum("free"))),
    figure("schedulable", "Schedulable free", number(schedulableFree(nodes, (n) => allocated.get(n)))),
    figure("memoryUsed", "GPU memory used", memoryUsed),
    figure("not-ready", "Not ready", number(nodes.filter(IN_STATE["not-ready"]).length)),
    figure("cordoned", "Cordoned", number(nodes.filter(isCordoned).length)));
}

export async function renderNodes(view, params, isCurrent) {
  const current = state(params);
  replace(view, h("h1", {}, "Nodes"), h("p", { class: "muted" }, "Loading…"));
  // GPU memory is an addition to the table: when it cannot be read, the rest is still shown.
  let memoryError = null;
  const [nodes, figures, memory, clusters] = await Promise.all([
    every("/api/v1/nodes", "nodes"),
    perNode(TYPES),
    perNode(MEMORY_TYPES).catch((error) => { memoryError = error; return null; }),
    clusterNames().catch(() => new Map()),
  ]);
  if (!isCurrent()) return;
  const rows = sorted(nodes.map((n) => rowOf(n, figures, memory, clusters)).filter((r) => matches(r, current)), current);
  const table = h("table", { class: "data", id: "nodes-table" },
    h("thead", {}, header(current)),
    h("tbody", {}, rows.map((r) => h("tr", { dataset: { cluster: r.node.clusterUuid, node: r.node.name } },
      COLUMNS.map((c) => h("td", { class: c.num ? "num" : "", dataset: { column: c.key } }, c.cell(r)))))));
  replace(view,
    h("h1", {}, "Nodes"),
    h("p", { class: "muted" },
      "Allocated: what the pods bound to a node hold; free: its GPUs minus that; schedulable free: the free GPUs ",
      "on nodes that are ready and not cordoned; GPU memory used: the latest samples of the workloads on the node. ",
      "A node's page shows what runs on it and its GPUs' use."),
    h("section", { class: "panel" },
      filters(current, nodes, clusters),
      memoryError
        ? h("p", { class: "error", role: "alert", id: "nodes-memory-error" }, `GPU memory could not be read: ${memoryError.message}`)
        : null,
      summary(rows, memory),
      table,
      rows.length ? null : h("p", { class: "muted" }, nodes.length ? "No nodes match." : "No nodes reported.")));
}
