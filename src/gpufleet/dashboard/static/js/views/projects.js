// Projects: GPU quota against allocation and fair share, and who is borrowing.
//
// Fair share per node pool is the project's deserved quota plus its weighted share of the
// pool's GPUs that no quota reserves (over-quota weight, 1 when unset), never above its limit:
// what it would get if every project wanted more (see quotas.js). Borrowing is what a project
// holds beyond its quota. Each project links to its page, each department the caller may read to
// its own.

import { h, replace } from "../dom.js";
import { every, grouped, widthPercent } from "../inventory.js";
import { fairShares, gpus, seesWholeCluster, totalShare, totals } from "../quotas.js";
import { departmentLink } from "./departments.js";

const HEADERS = ["Project", "Department", "Quota", "Allocated", "Fair share", "Borrowing", ""];

function projectRow(project, department, share, top) {
  const quota = project.totalResources?.gpuQuota;
  const { allocated } = totals(project);
  const borrowing = quota !== null && quota !== undefined && allocated > quota ? allocated - quota : 0;
  const bar = h("div", { class: "quota-bar" },
    widthPercent(h("div", { class: "allocated" }), (100 * allocated) / top),
    quota !== null && quota !== undefined ? widthPercent(h("div", { class: "quota" }), (100 * quota) / top) : null);
  return h("tr", { class: borrowing ? "borrowing" : "", dataset: { project: project.id } },
    h("td", {}, h("a", { href: `#/projects/${encodeURIComponent(project.id)}` }, project.name)),
    h("td", {}, departmentLink(project.parentId, department)),
    h("td", { class: "num", dataset: { field: "quota" } }, gpus(quota)),
    h("td", { class: "num", dataset: { field: "allocated" } }, gpus(allocated)),
    h("td", { class: "num", dataset: { field: "fair-share" } }, gpus(share)),
    h("td", { class: "num", dataset: { field: "borrowing" } }, borrowing ? `+${gpus(borrowing)}` : ""),
    h("td", { class: "bar-cell" }, bar));
}

export async function renderProjects(view, isCurrent) {
  replace(view, h("h1", {}, "Projects"), h("p", { class: "muted" }, "Loading…"));
  const [projects, departments, capacity, whole] = await Promise.all([
    every("/api/v1/org-unit/projects", "projects", { sortBy: "gpuAllocated", sortOrder: "desc" }),
    every("/api/v1/org-unit/departments", "departments"),
    grouped("/api/v1/nodes/telemetry", "TOTAL_GPUS", ["ClusterId", "Nodepool"]),
    seesWholeCluster(),
  ]);
  if (!isCurrent()) return;
  const names = new Map(departments.map((d) => [d.id, d.name]));
  // Only where the caller sees every project sharing the pools; elsewhere "–".
  const shares = fairShares(projects.filter((p) => whole(p.clusterId)), capacity, departments);
  const top = Math.max(1, ...projects.map((p) => Math.max(
    totals(p).allocated, p.totalResources?.gpuQuota ?? 0)));
  const rows = projects.map((p) =>
    projectRow(p, names.get(p.parentId), totalShare(shares.get(p.id)), top));
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
