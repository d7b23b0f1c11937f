// Events: the Kubernetes events of every workload the caller sees, newest first, filtered by
// type, cluster, project and time, paged; each links to its workload and project. The filters
// and the page live in the address bar.

import { get } from "../api.js";
import { errorLine, h, replace } from "../dom.js";
import { age, number, when } from "../format.js";
import { clusterLabel, clusterNames, every } from "../inventory.js";
import { pageSize, pager as pagerOf } from "../pager.js";
import { navigate } from "../router.js";

const TYPES = [["", "All types"], ["Warning", "Warnings"], ["Normal", "Normal"]];
// How far back the list goes, in hours ("" is every event kept).
const WINDOWS = [["", "Any time"], ["1", "Last hour"], ["24", "Last 24 hours"], ["168", "Last 7 days"]];

function state(params) {
  const offered = (options, value) => (options.some(([v]) => v === value) ? value : "");
  return {
    type: offered(TYPES, params.get("type") || ""),
    cluster: params.get("cluster") || "",
    project: params.get("project") || "",
    hours: offered(WINDOWS, params.get("hours") || ""),
    offset: Math.max(0, Number(params.get("offset")) || 0),
    limit: pageSize(params, 50),
  };
}

function go(next) {
  const params = new URLSearchParams();
  for (const key of ["type", "cluster", "project", "hours"]) if (next[key]) params.set(key, next[key]);
  if (next.offset) params.set("offset", String(next.offset));
  if (next.limit !== 50) params.set("limit", String(next.limit));
  navigate("events", params);
}

// The API's parameters for the chosen filters.
function selection(current) {
  const since = current.hours ? new Date(Date.now() - Number(current.hours) * 3600_000).toISOString() : undefined;
  return {
    type: current.type || undefined,
    clusterId: current.cluster || undefined,
    projectId: current.project || undefined,
    since,
  };
}

function select(name, label, value, options, onChange) {
  return h("select", { name, "aria-label": label, onchange: (e) => onChange(e.target.value) },
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}

function filters(current, clusters, projects) {
  const clusterIds = [...clusters.keys()];
  if (current.cluster && !clusters.has(current.cluster)) clusterIds.push(current.cluster);
  const shown = projects.filter((p) => !current.cluster || p.clusterId === current.cluster);
  const projectOptions = shown.map((p) => [p.id, p.name]);
  if (current.project && !projectOptions.some(([id]) => id === current.project)) {
    projectOptions.push([current.project, current.project]);
  }
  return h("div", { class: "filters", id: "event-filters" },
    select("type", "Type", current.type, TYPES, (type) => go({ ...current, type, offset: 0 })),
    select("cluster", "Cluster", current.cluster,
      [["", "All clusters"], ...clusterIds.map((id) => [id, clusterLabel(clusters, id)])],
      (cluster) => go({ ...current, cluster, project: "", offset: 0 })),
    select("project", "Project", current.project, [["", "All projects"], ...projectOptions],
      (project) => go({ ...current, project, offset: 0 })),
    select("hours", "Time", current.hours, WINDOWS, (hours) => go({ ...current, hours, offset: 0 })));
}

function eventRow(event, clusters) {
  const about = event.involvedObject ? `${event.involvedObject.kind} ${event.involvedObject.name}` : "";
  return h("tr", { dataset: { id: event.id, type: event.type, workload: event.workloadId } },
    h("td", { dataset: { column: "when" } }, h("span", { title: when(event.createdAt) }, `${age(event.createdAt)} ago`)),
    h("td", { dataset: { column: "reason" } },
      h("span", { class: `event event-${event.type}`, title: event.type }, event.reason || event.type)),
    h("td", { class: "wrap", dataset: { column: "workload" } },
      h("a", { href: `#/workloads/${encodeURIComponent(event.workloadId)}` }, event.workloadName)),
    h("td", { class: "wrap", dataset: { column: "project" } },
      h("a", { href: `#/projects/${encodeURIComponent(event.projectId)}` }, event.projectName)),
    h("td", { dataset: { column: "cluster" } }, clusterLabel(clusters, event.clusterId)),
    h("td", { class: "wrap", dataset: { column: "message" } },
      about ? h("span", { class: "muted" }, `${about}: `) : null, event.message,
      event.count > 1 ? h("span", { class: "muted" }, ` (×${number(event.count)})`) : null));
}

function pager(current, shown, total) {
  return pagerOf(current, shown, total, go, {
    ids: { range: "events-range", back: "events-prev", on: "events-next" }, labels: ["‹ Newer", "Older ›"],
  });
}

export async function renderEvents(view, params, isCurrent) {
  const current = state(params);
  replace(view, h("h1", {}, "Events"), h("p", { class: "muted" }, "Loading…"));
  const asked = selection(current);
  let list;
  let count;
  let clusters;
  let projects;
  try {
    [list, count, clusters, projects] = await Promise.all([
      get("/api/v1/events", { ...asked, offset: current.offset, limit: current.limit }),
      get("/api/v1/events/count", asked),
      clusterNames().catch(() => new Map()),
      every("/api/v1/org-unit/projects", "projects").catch(() => []),
    ]);
  } catch (error) {
    if (isCurrent()) replace(view, h("h1", {}, "Events"), filters(current, new Map(), []), errorLine(error));
    return;
  }
  if (!isCurrent()) return;
  const events = list.body.events;
  const headers = ["When", "Reason", "Workload", "Project", "Cluster", "Message"];
  replace(view,
    h("h1", {}, "Events"),
    h("p", { class: "muted" },
      "The Kubernetes events of the workloads and their pods, newest first (by their latest occurrence; repeats ",
      "of one event are one line, with their count). Warnings are in red."),
    h("section", { class: "panel" },
      filters(current, clusters, projects),
      h("table", { class: "data", id: "events-table" },
        h("thead", {}, h("tr", {}, headers.map((title) => h("th", {}, title)))),
        h("tbody", {}, events.map((event) => eventRow(event, clusters)))),
      events.length ? null : h("p", { class: "muted" }, "No events match."),
      pager(current, events.length, count.body.count)));
}
