// The workloads table: filter builder (filterBy), free-text search, sortable columns, paging.

import { get } from "../api.js";
import { errorLine, h, phaseBadge, replace } from "../dom.js";
import { age, number, when } from "../format.js";
import { clusterLabel, clusterNames } from "../inventory.js";
import { pageSize, pager as pagerOf } from "../pager.js";
import { navigate } from "../router.js";

// Labels of the filterBy operators; which operators a field takes comes from the server.
const OPERATOR_LABELS = {
  "==": "is", "!=": "is not", "=@": "contains", "!@": "does not contain",
  "=^": "starts with", "=$": "ends with", ">=": "≥", "<=": "≤",
};
const ORDERING = new Set(["<=", ">="]);
// The GPUs a workload asks for, over all its pods: whole or fractional devices, or GPU memory.
export function requestedGpus(w) {
  const total = w.workloadRequestedResources;
  const perPod = w.podsRequestedResources;
  const pods = w.requestedPods?.number ?? 1;
  if (total?.gpu?.request !== undefined && total?.gpu?.request !== null) return number(total.gpu.request);
  if (total?.gpuMemory?.request) return `${total.gpuMemory.request} GPU memory`;
  if (perPod?.gpu?.request !== undefined && perPod?.gpu?.request !== null) return number(perPod.gpu.request * pods);
  if (perPod?.gpuMemory?.request) return `${pods} × ${perPod.gpuMemory.request} GPU memory`;
  // A request that names no GPU asks for none; a workload reported without its request is unknown.
  return total || perPod ? "0" : "";
}

// The GPUs a workload holds idle now by the idle-GPU rule (``idleAllocatedGpus``, applied every
// minute to running workloads): red when some are, a dash when it holds GPUs the rule has not
// measured, nothing when it holds none.
function idleGpus(w) {
  const idle = w.idleAllocatedGpus;
  if (idle !== null && idle !== undefined) return h("span", { class: idle > 0 ? "error" : "" }, number(idle));
  return (w.allocatedResources?.gpu ?? 0) > 0 ? h("span", { title: "Not measured" }, "–") : "";
}

// The filter that lists the workloads holding idle GPUs, as the overview's idle figures do.
const IDLE_FILTER = "idleAllocatedGpus>=0.01";

// A column with ``num`` sorts descending on its first click: the largest is what one looks for.
// The requested GPUs are not a sort field of the API, so that column does not sort.
const COLUMNS = [
  { title: "Name", sort: "name", key: "name", cell: (w) => h("a", { href: `#/workloads/${encodeURIComponent(w.id)}` }, w.name) },
  { title: "Type", sort: "type", cell: (w) => w.type },
  { title: "Project", sort: "projectName", key: "project", cell: (w) => w.projectName },
  { title: "Department", sort: "departmentName", key: "department", cell: (w) => w.departmentName },
  { title: "Cluster", sort: "clusterId", cell: (w, clusters) => clusterLabel(clusters, w.clusterId) },
  { title: "Phase", sort: "phase", cell: (w) => phaseBadge(w.phase) },
  { title: "Requested GPUs", key: "requestedGPU", cell: (w) => requestedGpus(w), num: true },
  { title: "Allocated GPUs", sort: "allocatedGPU", cell: (w) => number(w.allocatedResources?.gpu ?? ""), num: true },
  { title: "Idle GPUs", sort: "idleAllocatedGpus", key: "idle", cell: (w) => idleGpus(w), num: true },
  { title: "Submitted by", sort: "submittedBy", cell: (w) => h("span", { class: "clip", title: w.submittedBy ?? "" }, w.submittedBy ?? "") },
  { title: "Age", sort: "createdAt", cell: (w) => age(w.createdAt) },
];
// Shown with the deleted workloads only: how long ago each was deleted.
const DELETED_COLUMN = {
  title: "Deleted", sort: "deletedAt", cell: (w) => h("span", { title: when(w.deletedAt) }, `${age(w.deletedAt)} ago`),
};

function state(params) {
  return {
    filters: params.getAll("f"),
    search: params.get("q") || "",
    sort: params.get("sort") || "createdAt",
    order: params.get("order") || "desc",
    offset: Math.max(0, Number(params.get("offset")) || 0),
    limit: pageSize(params, 25),
    // The API lists either the workloads that exist or, with deleted=true, only deleted ones.
    deleted: params.get("deleted") === "true",
  };
}

function columns(current) {
  return current.deleted ? [...COLUMNS, DELETED_COLUMN] : COLUMNS;
}

function go(next) {
  const params = new URLSearchParams();
  for (const filter of next.filters) params.append("f", filter);
  if (next.search) params.set("q", next.search);
  params.set("sort", next.sort);
  params.set("order", next.order);
  if (next.offset) params.set("offset", String(next.offset));
  if (next.limit !== 25) params.set("limit", String(next.limit));
  if (next.deleted) params.set("deleted", "true");
  navigate("workloads", params);
}

let queryableFields;

// The fields filterBy accepts and their operators, asked of the server once per page load.
async function fieldCatalogue() {
  queryableFields ??= get("/api/v1/workload-fields").then(
    (answer) => answer.body.fields,
    (error) => { queryableFields = undefined; throw error; },
  );
  return queryableFields;
}

// The operators the server lists for the field. The server compares text with <= and >= in code
// point order, phases too, but the order of a fixed set's names (``values``: a phase) means
// nothing, so such a field is offered the others, and its values to pick from.
function offeredOperators(field) {
  return field.values ? field.operators.filter((op) => !ORDERING.has(op)) : field.operators;
}

function operatorOptions(field) {
  return offeredOperators(field).map((op) => h("option", { value: op }, OPERATOR_LABELS[op] ?? op));
}

function valueOptions(field) {
  return (field.values ?? []).map((v) => h("option", { value: v }));
}

function filterBuilder(current, fields) {
  const field = h("select", { name: "field", "aria-label": "Field" },
    fields.map((f) => h("option", { value: f.name }, f.name)));
  const operator = h("select", { name: "operator", "aria-label": "Operator" }, operatorOptions(fields[0]));
  const values = h("datalist", { id: "field-values" }, valueOptions(fields[0]));
  field.addEventListener("change", () => {
    const chosen = fields.find((f) => f.name === field.value);
    replace(operator, ...operatorOptions(chosen));
    replace(values, ...valueOptions(chosen));
  });
  const value = h("input", { name: "value", placeholder: "value", list: "field-values", "aria-label": "Value" });
  const add = h("button", { type: "submit" }, "Add filter");
  const form = h("form", { class: "filter-row", id: "filter-builder" }, field, operator, value, add, values);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!value.value.trim()) return;
    go({ ...current, filters: [...current.filters, `${field.value}${operator.value}${value.value.trim()}`], offset: 0 });
  });
  return form;
}

// A cluster filter reads with the cluster's name; the chip keeps the filter itself in data-filter.
function chipLabel(filter, clusters) {
  const match = /^clusterId(==|!=)(.+)$/.exec(filter);
  return match && clusters?.has(match[2]) ? `cluster${match[1]}${clusters.get(match[2])}` : filter;
}

function chips(current) {
  return current.filters.map((filter, index) => h("span", { class: "chip", "data-filter": filter },
    h("span", { class: "chip-label" }, filter),
    h("button", {
      type: "button", title: "Remove filter", "aria-label": `Remove ${filter}`,
      onclick: () => go({ ...current, filters: current.filters.filter((_, i) => i !== index), offset: 0 }),
    }, "×")));
}

// Deleted workloads are a list of their own (the API's deleted=true), as in the CLI.
function deletedToggle(current) {
  return h("label", { class: "muted" },
    h("input", {
      type: "checkbox", id: "show-deleted", checked: current.deleted,
      onchange: (event) => go({
        ...current, deleted: event.target.checked, offset: 0,
        sort: event.target.checked ? "deletedAt" : "createdAt", order: "desc",
      }),
    }),
    " Deleted workloads only");
}

// Only the workloads holding idle GPUs, most first: the filter as a chip, and the sort. (Sorted
// by idle GPUs alone, the API puts the workloads it has no figure for first.)
function idleToggle(current) {
  const on = current.filters.includes(IDLE_FILTER);
  return h("label", { class: "muted" },
    h("input", {
      type: "checkbox", id: "idle-only", checked: on,
      onchange: (event) => go(event.target.checked
        ? { ...current, filters: [...current.filters, IDLE_FILTER], sort: "idleAllocatedGpus", order: "desc", offset: 0 }
        : { ...current, filters: current.filters.filter((f) => f !== IDLE_FILTER), offset: 0 }),
    }),
    " Holding idle GPUs");
}

function searchBox(current) {
  const input = h("input", { type: "search", name: "search", placeholder: "Search…", value: current.search });
  const form = h("form", { class: "filter-row" }, input);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    go({ ...current, search: input.value.trim(), offset: 0 });
  });
  return form;
}

function nextOrder(column, current) {
  if (column.sort !== current.sort) return column.num ? "desc" : "asc";
  return current.order === "asc" ? "desc" : "asc";
}

function header(current) {
  return h("tr", {}, columns(current).map((column) => {
    if (!column.sort) return h("th", { class: column.num ? "num" : "", "data-column": column.key }, column.title);
    const sorted = column.sort === current.sort ? ` sorted-${current.order}` : "";
    return h("th", {
      class: `sortable${sorted}${column.num ? " num" : ""}`, "data-sort": column.sort, "data-column": column.key,
      onclick: () => go({ ...current, sort: column.sort, offset: 0, order: nextOrder(column, current) }),
    }, column.title);
  }));
}

function pager(current, shown, total) {
  return pagerOf(current, shown, total, go, {
    ids: { range: "range", back: "prev-page", on: "next-page" }, labels: ["‹ Previous", "Next ›"],
  });
}

export async function renderWorkloads(view, params, isCurrent) {
  const current = state(params);
  const body = h("div", { id: "workloads-body" }, h("p", { class: "muted" }, "Loading…"));
  const builder = h("div", {});
  replace(view,
    h("h1", {}, "Workloads"),
    h("div", { class: "panel" },
      h("div", { class: "filters" }, builder, searchBox(current), deletedToggle(current), idleToggle(current), chips(current)),
      body));
  const selection = {
    filterBy: current.filters, search: current.search || undefined, deleted: current.deleted ? "true" : undefined,
  };
  // The form appears when the catalogue arrives; a failure shows in the listing's error line.
  fieldCatalogue().then((fields) => isCurrent() && replace(builder, filterBuilder(current, fields)), () => {});
  let list;
  let count;
  let clusters;
  try {
    [list, count, clusters] = await Promise.all([
      get("/api/v1/workloads", {
        ...selection, sortBy: current.sort, sortOrder: current.order, offset: current.offset, limit: current.limit,
      }),
      get("/api/v1/workloads/count", selection),
      clusterNames().catch(() => new Map()),
    ]);
  } catch (error) {
    if (isCurrent()) replace(body, errorLine(error));
    return;
  }
  if (!isCurrent()) return;
  for (const chip of view.querySelectorAll(".chip")) {
    chip.querySelector(".chip-label").textContent = chipLabel(chip.dataset.filter, clusters);
  }
  const workloads = list.body.workloads;
  const rows = workloads.map((w) => h("tr", { "data-id": w.id },
    columns(current).map((column) => h("td", { class: column.num ? "num" : "", "data-column": column.key },
      column.cell(w, clusters)))));
  replace(body,
    h("table", { class: "data", id: "workloads-table" }, h("thead", {}, header(current)), h("tbody", {}, rows)),
    workloads.length ? null : h("p", { class: "muted" }, current.deleted ? "No deleted workloads match." : "No workloads match."),
    pager(current, workloads.length, count.body.count));
}
