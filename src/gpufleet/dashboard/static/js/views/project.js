// One project: its figures and, per node pool, its quota (deserved, limit, over-quota weight),
// what it holds and asks for, and its fair share; links to its workloads and pending ones.

import { get } from "../api.js";
import { figure, h, numCell as num, replace } from "../dom.js";
import { clusterLabel, clusterNames, every, grouped } from "../inventory.js";
import {
  fairShares, gpus, limitText, poolFigures, seesWholeCluster, totalShare, totals, waiting,
} from "../quotas.js";
import { departmentLink } from "./departments.js";
import { pendingLink, workloadsLink } from "./overview.js";

const POOL_HEADERS = [
  ["Node pool"], ["Deserved", "The GPUs the project is guaranteed in the pool"],
  ["Limit", "The most GPUs it may hold in the pool; none when unset"],
  ["Over-quota weight", "Its weight when the pool's unreserved GPUs are shared (1 when unset)"],
  ["Allocated"], ["Requested", "GPUs its running and pending workloads ask for"],
  ["Waiting", "Requested beyond allocated"], ["Fair share"],
];

function poolRow(project, pool, share) {
  const running = workloadsLink([`projectId==${project.id}`, `nodepool==${pool.name}`], "allocatedGPU");
  return h("tr", { dataset: { pool: pool.name } },
    h("td", {}, pool.name),
    num("deserved", gpus(pool.deserved)),
    num("limit", limitText(pool)),
    num("weight", gpus(pool.weight)),
    num("allocated", pool.allocated > 0
      ? h("a", { href: running, title: "Its workloads running in the pool" }, gpus(pool.allocated))
      : "0"),
    num("requested", gpus(pool.requested)),
    num("waiting", gpus(waiting(pool.requested, pool.allocated))),
    num("fair-share", gpus(share)));
}

export async function renderProject(view, projectId, isCurrent) {
  replace(view, h("h1", {}, "Project"), h("p", { class: "muted" }, "Loading…"));
  const mine = [`projectId==${projectId}`];
  const [project, projects, departments, capacity, clusters, all, pending, whole] = await Promise.all([
    get(`/api/v1/org-unit/projects/${encodeURIComponent(projectId)}`).then((r) => r.body),
    every("/api/v1/org-unit/projects", "projects"),
    every("/api/v1/org-unit/departments", "departments"),
    grouped("/api/v1/nodes/telemetry", "TOTAL_GPUS", ["ClusterId", "Nodepool"]),
    clusterNames(),
    get("/api/v1/workloads/count", { filterBy: mine }).then((r) => r.body.count),
    get("/api/v1/workloads/count", { filterBy: [...mine, "phase==Pending"] }).then((r) => r.body.count),
    seesWholeCluster(),
  ]);
  if (!isCurrent()) return;
  const shares = whole(project.clusterId) ? fairShares(projects, capacity, departments).get(project.id) : undefined;
  const department = departments.find((d) => d.id === project.parentId);
  // A project's reader may not read its department: the project's workloads name it.
  const departmentName = department ? undefined : project.parent?.name ?? await get(
    "/api/v1/workloads", { filterBy: mine, limit: 1 },
  ).then((r) => r.body.workloads[0]?.departmentName).catch(() => undefined);
  if (!isCurrent()) return;
  const quota = project.totalResources?.gpuQuota;
  const { allocated, requested } = totals(project);
  const borrowing = quota !== null && quota !== undefined ? Math.max(0, allocated - quota) : 0;
  replace(view,
    h("p", {}, h("a", { href: "#/projects" }, "‹ Projects")),
    h("h1", {}, project.name),
    h("section", { class: "panel" },
      h("dl", { class: "details" },
        h("dt", {}, "Department"),
        h("dd", {}, department ? departmentLink(project.parentId, department.name) : departmentName ?? project.parentId),
        h("dt", {}, "Cluster"), h("dd", {}, clusterLabel(clusters, project.clusterId)),
        h("dt", {}, "Namespace"), h("dd", {}, project.status?.namespace ?? "")),
      h("div", { class: "figures", id: "project-figures" },
        figure("quota", "Quota", gpus(quota)),
        figure("allocated", "Allocated", gpus(allocated)),
        figure("requested", "Requested", gpus(requested)),
        figure("waiting", "Waiting", gpus(waiting(requested, allocated))),
        figure("fair-share", "Fair share", gpus(totalShare(shares))),
        figure("borrowing", "Borrowing", borrowing ? `+${gpus(borrowing)}` : "0"),
        figure("workloads", "Workloads", h("a", { href: workloadsLink(mine, "createdAt") }, String(all))),
        figure("pending", "Pending", h("a", { href: pendingLink(mine) }, String(pending))))),
    h("section", { class: "panel" },
      h("h2", {}, "By node pool"),
      h("p", { class: "muted" },
        "Requested: the GPUs its running and pending workloads ask for, a pending one in the first pool it asks ",
        "for; waiting: what they ask for beyond what they hold. Fair share: the deserved GPUs plus a part, by ",
        "over-quota weight, of the pool's GPUs no quota reserves, never above the limit.",
        whole(project.clusterId) ? "" : " It takes every project of the cluster, which you may not see: none is shown."),
      h("table", { class: "data", id: "project-pools" },
        h("thead", {}, h("tr", {}, POOL_HEADERS.map(([text, title], i) => h("th", { class: i ? "num" : "", title }, text)))),
        h("tbody", {}, poolFigures(project).map((pool) => poolRow(project, pool, shares?.get(pool.name)))))));
}
