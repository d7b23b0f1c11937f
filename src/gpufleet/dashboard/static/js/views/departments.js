// Departments: each one's quota, allocation and requests per node pool, its projects, and the
// sum of its projects' quotas against its own. A department whose projects are promised more
// GPUs in a pool than it is itself (over-subscribed) is flagged, and listed on top.

import { get } from "../api.js";
import { figure, h, numCell as num, replace } from "../dom.js";
import { clusterLabel, clusterNames, every } from "../inventory.js";
import { gpus, limitText, poolFigures, totals, waiting } from "../quotas.js";
import { pendingLink, workloadsLink } from "./overview.js";

const POOL_HEADERS = [
  ["Node pool"], ["Quota", "The GPUs the department is guaranteed in the pool"],
  ["Limit", "The most GPUs its projects may hold together; none when unset"],
  ["Over-quota weight"], ["Projects' quotas", "Its projects' deserved GPUs added up"],
  ["Allocated"], ["Requested", "GPUs its running and pending workloads ask for"],
  ["Waiting", "Requested beyond allocated"],
];
const PROJECT_HEADERS = ["Project", "Quota", "Allocated", "Requested", "Waiting"];

// A department's name linking to its page; its id alone when the caller may not read it (the
// page would answer 404), as a project viewer may not.
export function departmentLink(id, name) {
  return name === undefined ? id : h("a", { href: `#/departments/${encodeURIComponent(id)}` }, name);
}

// The pools where the department's projects are promised more than the department itself; none
// when the department has no quota at all (no queue gives one), since then there is nothing to
// compare with.
export function overSubscribed(department, pools) {
  if (!(department.resources || []).length) return [];
  return pools.filter((pool) => pool.projects > (pool.deserved ?? 0) + 1e-9);
}

function poolRow(pool, over) {
  return h("tr", { class: over ? "over" : "", dataset: { pool: pool.name } },
    h("td", {}, pool.name),
    num("quota", gpus(pool.deserved)),
    num("limit", limitText(pool)),
    num("weight", gpus(pool.weight)),
    num("projects-quota", gpus(pool.projects), over),
    num("allocated", gpus(pool.allocated)),
    num("requested", gpus(pool.requested)),
    num("waiting", gpus(waiting(pool.requested, pool.allocated))));
}

function projectRow(project) {
  const { allocated, requested } = totals(project);
  return h("tr", { dataset: { project: project.id } },
    h("td", {}, h("a", { href: `#/projects/${encodeURIComponent(project.id)}` }, project.name)),
    num("quota", gpus(project.totalResources?.gpuQuota)),
    num("allocated", gpus(allocated)),
    num("requested", gpus(requested)),
    num("waiting", gpus(waiting(requested, allocated))));
}

function departmentPanel(department, projects, clusters) {
  const pools = poolFigures(department);
  const over = overSubscribed(department, pools);
  const { allocated, requested } = totals(department);
  const mine = [`departmentId==${department.id}`];
  return h("section", { class: `panel department${over.length ? " over" : ""}`, dataset: { department: department.id } },
    h("h2", {},
      departmentLink(department.id, department.name), " ",
      h("span", { class: "muted" }, clusterLabel(clusters, department.clusterId)), " ",
      over.length ? h("span", { class: "badge over-badge" }, "Projects over quota") : null),
    h("div", { class: "figures" },
      figure("quota", "Quota", gpus(department.totalResources?.gpuQuota)),
      figure("projects-quota", "Projects' quotas", gpus(pools.reduce((sum, p) => sum + p.projects, 0))),
      figure("allocated", "Allocated", gpus(allocated)),
      figure("requested", "Requested", gpus(requested)),
      figure("waiting", "Waiting", gpus(waiting(requested, allocated))),
      figure("projects", "Projects", String(projects.length))),
    h("p", {}, h("a", { href: workloadsLink(mine, "createdAt") }, "Workloads"), " · ",
      h("a", { href: pendingLink(mine) }, "Pending workloads")),
    pools.length
      ? h("table", { class: "data pools" },
          h("thead", {}, h("tr", {}, POOL_HEADERS.map(([text, title], i) => h("th", { class: i ? "num" : "", title }, text)))),
          h("tbody", {}, pools.map((pool) => poolRow(pool, over.includes(pool)))))
      : h("p", { class: "muted" }, "No quota, allocation or request in any node pool."),
    projects.length
      ? h("table", { class: "data department-projects" },
          h("thead", {}, h("tr", {}, PROJECT_HEADERS.map((text, i) => h("th", { class: i ? "num" : "" }, text)))),
          h("tbody", {}, projects.map(projectRow)))
      : h("p", { class: "muted" }, "No projects."));
}

function overSubscribedSummary(departments) {
  const lines = departments.map((d) => [d, overSubscribed(d, poolFigures(d))]).filter(([, over]) => over.length)
    .map(([d, over]) => `${d.name}: ${over.map((p) => `${p.name} ${gpus(p.projects)} of ${gpus(p.deserved ?? 0)}`).join(", ")}`);
  return h("section", { class: "panel", id: "over-subscribed" },
    h("h2", {}, `Projects over their department's quota (${lines.length})`),
    lines.length
      ? h("p", {}, lines.join("; "))
      : h("p", { class: "muted" }, "In every department, the projects' quotas fit within its own."));
}

// Every department the key may see, or the one of `departmentId`.
export async function renderDepartments(view, departmentId, isCurrent) {
  replace(view, h("h1", {}, "Departments"), h("p", { class: "muted" }, "Loading…"));
  const ids = departmentId
    ? [departmentId]
    : (await every("/api/v1/org-unit/departments", "departments")).map((d) => d.id);
  const projectFilter = departmentId ? { filterBy: `departmentId==${departmentId}` } : {};
  // The list leaves out each department's per-pool status and its projects' quotas: one GET each.
  const [departments, projects, clusters] = await Promise.all([
    Promise.all(ids.map((id) => get(`/api/v1/org-unit/departments/${encodeURIComponent(id)}`).then((r) => r.body))),
    every("/api/v1/org-unit/projects", "projects", projectFilter),
    clusterNames(),
  ]);
  if (!isCurrent()) return;
  const panels = departments.map((d) => departmentPanel(d, projects.filter((p) => p.parentId === d.id), clusters));
  replace(view,
    departmentId ? h("p", {}, h("a", { href: "#/departments" }, "‹ Departments")) : null,
    h("h1", {}, departmentId ? departments[0].name : "Departments"),
    h("p", { class: "muted" },
      "Quota is the GPUs a department is guaranteed; its projects' quotas are what it promises them. Requested: ",
      "the GPUs its running and pending workloads ask for; waiting: what they ask for beyond what they hold."),
    // Whether every department's projects fit is a fact only about the departments shown.
    departmentId || !departments.length ? null : overSubscribedSummary(departments),
    departments.length ? panels : h("p", { class: "muted" }, "No departments: this key's rules cover none."));
}
