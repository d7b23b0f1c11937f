// Quotas of projects and departments per node pool, as the org-unit APIs answer them, and the
// fair share of each project in each pool.

import { get } from "./api.js";

// A cluster agent's rule lets it report, not read the cluster's projects.
const CLUSTER_AGENT_ROLE = 1001;

// Whether the caller sees every project of a cluster: a fair share shares a pool's spare GPUs
// among all the projects with a quota in it, and one computed over the projects a project or
// department viewer sees would hand it the others' part. A function of the cluster's uuid.
export async function seesWholeCluster() {
  const { body } = await get("/api/v1/authorization/me/access-rules", { limit: 500 });
  const rules = (body.accessRules?.accessRules || []).filter((r) => r.roleId !== CLUSTER_AGENT_ROLE);
  const tenant = rules.some((r) => r.scopeType === "tenant");
  const clusters = new Set(rules.filter((r) => r.scopeType === "cluster").map((r) => r.scopeId));
  return (clusterId) => tenant || clusters.has(clusterId);
}

// GPUs as the views print them: two decimals at most, "–" when there is no figure.
export function gpus(value) {
  return value === null || value === undefined ? "–" : String(Math.round(value * 100) / 100);
}

// What waits: the GPUs running and pending workloads ask for beyond those they hold.
export function waiting(requested, allocated) {
  return Math.max(0, (requested ?? 0) - (allocated ?? 0));
}

// A limit as the views print it: "none" when unset, "–" in a pool without a quota.
export function limitText(pool) {
  if (pool.deserved === null) return "–";
  return pool.limit === null ? "none" : gpus(pool.limit);
}

// A unit's allocated and requested GPUs over all its node pools.
export function totals(unit) {
  const status = unit.status?.quotaStatus ?? {};
  return { allocated: status.allocated?.gpu ?? 0, requested: status.requested?.gpu ?? 0 };
}

// A unit's figures per node pool, for every pool its quota (`resources`), its status
// (`status.nodePoolQuotaStatuses`) or, for a department, its projects' quotas
// (`projectsAggregatedResources`) name, by pool name: deserved GPUs, limit (null: none),
// over-quota weight, allocated and requested GPUs, and the projects' deserved GPUs.
export function poolFigures(unit) {
  const pools = new Map();
  const pool = (name) => {
    if (!pools.has(name)) {
      pools.set(name, {
        name, deserved: null, limit: null, weight: null, allocated: 0, requested: 0, projects: 0,
      });
    }
    return pools.get(name);
  };
  for (const resource of unit.resources || []) {
    Object.assign(pool(resource.nodePool?.name ?? ""), {
      deserved: resource.gpu?.deserved ?? null,
      limit: resource.gpu?.limit ?? null,
      weight: resource.gpu?.overQuotaWeight ?? null,
    });
  }
  for (const status of unit.status?.nodePoolQuotaStatuses || []) {
    Object.assign(pool(status.nodePoolName), {
      allocated: status.allocated?.gpu ?? 0,
      requested: status.requested?.gpu ?? 0,
    });
  }
  for (const aggregated of unit.projectsAggregatedResources || []) {
    pool(aggregated.nodePool?.name ?? "").projects = aggregated.gpu?.deserved ?? 0;
  }
  return [...pools.values()].sort((a, b) => a.name.localeCompare(b.name));
}

// The pool's GPUs that no quota reserves, shared by over-quota weight among the members still
// below their limit; a member the share would take past its limit gets its limit, and what it
// cannot take is shared again among the others.
function shareSpare(members, spare) {
  let open = members.filter((m) => m.limit === null || m.share < m.limit);
  while (spare > 1e-9 && open.length) {
    const weights = open.reduce((sum, m) => sum + m.weight, 0);
    if (weights <= 0) return;
    const capped = open.filter((m) => m.limit !== null && m.share + (spare * m.weight) / weights > m.limit);
    if (!capped.length) {
      for (const m of open) m.share += (spare * m.weight) / weights;
      return;
    }
    for (const m of capped) {
      spare -= m.limit - m.share;
      m.share = m.limit;
    }
    open = open.filter((m) => !capped.includes(m));
  }
}

// project id -> node pool name -> fair share in GPUs: its deserved quota plus its weighted part
// of the pool's GPUs no quota reserves (weight 1 when unset), never above its limit. `capacity`
// maps "clusterId/pool" to the pool's GPUs.
export function fairShares(projects, capacity) {
  const pools = new Map();
  for (const project of projects) {
    for (const resource of project.resources || []) {
      const key = `${project.clusterId}/${resource.nodePool?.name}`;
      if (!pools.has(key)) pools.set(key, []);
      const deserved = resource.gpu?.deserved ?? 0;
      pools.get(key).push({
        id: project.id,
        pool: resource.nodePool?.name,
        share: deserved,
        deserved,
        weight: resource.gpu?.overQuotaWeight ?? 1,
        limit: resource.gpu?.limit ?? null,
      });
    }
  }
  const shares = new Map();
  for (const [key, members] of pools) {
    const reserved = members.reduce((sum, m) => sum + m.deserved, 0);
    shareSpare(members, Math.max((capacity.get(key) ?? 0) - reserved, 0));
    for (const m of members) {
      if (!shares.has(m.id)) shares.set(m.id, new Map());
      shares.get(m.id).set(m.pool, m.share);
    }
  }
  return shares;
}

// A project's fair share over all its pools, or undefined when it has a quota in none.
export function totalShare(perPool) {
  if (!perPool) return undefined;
  let sum = 0;
  for (const share of perPool.values()) sum += share;
  return sum;
}
