// Projects: GPU quota against allocation and fair share, and who is borrowing.
//
// Fair share per node pool is the project's deserved quota plus its weighted share of the
// pool's GPUs that no quota reserves (over-quota weight, 1 when unset): what it would get if
// every project wanted more. Borrowing is what a project holds beyond its quota.

import { get } from "../api.js";
import { h, replace } from "../dom.js";
import { every, grouped, widthPercent } from "../inventory.js";

const HEADERS = ["Project", "Department", "Quota", "Allocated", "Fair share", "Borrowing", ""];

function round(value) {
  return Math.round(value * 100) / 100;
}

// project id -> fair share in GPUs, from each pool's capacity and the quotas in it.
export function fairShares(projects, capacity) {
  const pools = new Map();
  for (const project of projects) {
    for (const resource of project.resources || []) {
      const key = `${project.clusterId}/${resource.nodePool?.name}`;
      if (!pools.has(key)) pools.set(key, []);
      pools.get(key).push({
        id: project.id,
        deserved: resource.gpu?.deserved ?? 0,
        weight: resource.gpu?.overQuotaWeight ?? 1,
      });
    }
  }
  const shares = new Map();
  for (const [key, members] of pools) {
    const reserved = members.reduce((sum, m) => sum + m.deserved, 0);
    const weights = members.reduce((sum, m) => sum + m.weight, 0) || 1;
    const spare = Math.max((capacity.get(key) ?? 0) - reserved, 0);
    for (const m of members) {
      shares.set(m.id, (shares.get(m.id) ?? 0) + m.deserved + (spare * m.weight) / weights);
    }
  }
  return shares;
}

function projectRow(project, department, share, top) {
  const quota = project.totalResources?.gpuQuota;
  const allocated = project.status?.quotaStatus?.allocated?.gpu ?? 0;
  const borrowing = quota !== null && quota !== undefined && allocated > quota ? allocated - quota : 0;
  const bar = h("div", { class: "quota-bar" },
    widthPercent(h("div", { class: "allocated" }), (100 * allocated) / top),
    quota !== null && quota !== undefined ? widthPercent(h("div", { class: "quota" }), (100 * quota) / top) : null);
  return h("tr", { class: borrowing ? "borrowing" : "", dataset: { project: project.id } },
    h("td", {}, project.name),
    h("td", {}, department),
    h("td", { class: "num", dataset: { field: "quota" } }, quota === null || quota === undefined ? "–" : String(quota)),
    h("td", { class: "num", dataset: { field: "allocated" } }, String(round(allocated))),
    h("td", { class: "num", dataset: { field: "fair-share" } }, share === undefined ? "–" : String(round(share))),
    h("td", { class: "num", dataset: { field: "borrowing" } }, borrowing ? `+${round(borrowing)}` : ""),
    h("td", { class: "bar-cell" }, bar));
}

export async function renderProjects(view, isCurrent) {
  replace(view, h("h1", {}, "Projects"), h("p", { class: "muted" }, "Loading…"));
  const [projects, departments, capacity] = await Promise.all([
    every("/api/v1/org-unit/projects", "projects", { sortBy: "gpuAllocated", sortOrder: "desc" }),
    every("/api/v1/org-unit/departments", "departments"),
    grouped("/api/v1/nodes/telemetry", "TOTAL_GPUS", ["ClusterId", "Nodepool"]),
  ]);
  if (!isCurrent()) return;
  const names = new Map(departments.map((d) => [d.id, d.name]));
  const shares = fairShares(projects, capacity);
  const top = Math.max(1, ...projects.map((p) => Math.max(
    p.status?.quotaStatus?.allocated?.gpu ?? 0, p.totalResources?.gpuQuota ?? 0)));
  const rows = projects.map((p) => projectRow(p, names.get(p.parentId) ?? p.parentId, shares.get(p.id), top));
  const borrowers = rows.filter((row) => row.classList.contains("borrowing"));
  replace(view,
    h("h1", {}, "Projects"),
    h("p", { class: "muted" },
      "Quota is the GPUs a project is guaranteed; fair share adds its weighted part of the GPUs no quota ",
      "reserves; a project allocated beyond its quota is borrowing from others' unused quota."),
    h("section", { class: "panel", id: "borrowers" },
      h("h2", {}, `Borrowing (${borrowers.length})`),
      borrowers.length
        ? h("p", {}, borrowers.map((row) => `${row.cells[0].textContent} ${row.cells[5].textContent}`).join(", "))
        : h("p", { class: "muted" }, "No project holds more than its quota.")),
    h("section", { class: "panel" },
      h("table", { class: "data projects" },
        h("thead", {}, h("tr", {}, HEADERS.map((title, i) => h("th", { class: i >= 2 && i <= 5 ? "num" : "" }, title)))),
        h("tbody", {}, rows))));
}
