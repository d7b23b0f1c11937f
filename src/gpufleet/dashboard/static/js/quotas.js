// Quotas of projects and departments per node pool, as the org-unit APIs answer them, and the
// fair share of each project in each pool.

import { get } from "./api.js";

// A cluster agent's rule lets it report, not read the cluster's projects.
const CLUSTER_AGENT_ROLE = 1001;

// Whether the caller sees every project of a cluster: a fair share shares a pool's spare GPUs
// among all the projects with a quota in it, and one computed over the projects a project or
// department viewer sees would hand it the others' part. A function of the cluster's uuid.
export async function seesWholeCluster() {
  const rules = await readingRules();
  const tenant = rules.some((r) => r.scopeType === "tenant");
  const clusters = new Set(rules.filter((r) => r.scopeType === "cluster").map((r) => r.scopeId));
  return (clusterId) => tenant || clusters.has(clusterId);
}

// The caller's own rules that let it read (a cluster agent's rule lets it report only).
async function readingRules() {
  const { body } = await get("/api/v1/authorization/me/access-rules", { limit: 500 });
  return (body.accessRules?.accessRules || []).filter((r) => r.roleId !== CLUSTER_AGENT_ROLE);
}

// Whether the caller reads the whole tenant (a rule on the tenant), not only some of it.
export async function readsTenant() {
  return (await readingRules()).some((r) => r.scopeType === "tenant");
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

// A unit's quota in each node pool it has one in, as a member of that pool's division.
function members(unit) {
  return (unit.resources || []).map((resource) => {
    const deserved = resource.gpu?.deserved ?? 0;
    return {
      id: unit.id,
      pool: resource.nodePool?.name,
      share: deserved,
      deserved,
      weight: resource.gpu?.overQuotaWeight ?? 1,
      limit: resource.gpu?.limit ?? null,
    };
  });
}

// Members' fair shares of `gpus`: each its deserved quota, then the rest shared as shareSpare
// does. A quota the GPUs cannot cover is still the member's (the sum is then above `gpus`).
function divide(group, gpus) {
  const reserved = group.reduce((sum, m) => sum + m.deserved, 0);
  shareSpare(group, Math.max(gpus - reserved, 0));
}

// project id -> node pool name -> fair share in GPUs, divided as KAI divides a pool: first
// among the departments with a project there, each its deserved quota plus its part, by
// over-quota weight (1 when unset), of the GPUs no department's quota reserves, never above its
// limit; then each department's share among its projects the same way. A department without a
// quota in the pool takes part with none (deserved 0, weight 1, no limit). It is what the
// scheduler would give if every project wanted more. `capacity` maps "clusterId/pool" to the
// pool's GPUs; `departments` are the projects' departments (those not among them count as one
// department each, without a quota).
export function fairShares(projects, capacity, departments = []) {
  const quotas = new Map();
  for (const department of departments) {
    for (const m of members(department)) quotas.set(`${department.id}/${m.pool}`, m);
  }
  // "clusterId/pool" -> department id -> that department's projects' members in the pool.
  const pools = new Map();
  for (const project of projects) {
    for (const m of members(project)) {
      const key = `${project.clusterId}/${m.pool}`;
      if (!pools.has(key)) pools.set(key, new Map());
      const units = pools.get(key);
      const parent = project.parentId ?? `project:${project.id}`;
      if (!units.has(parent)) units.set(parent, []);
      units.get(parent).push(m);
    }
  }
  const shares = new Map();
  for (const [key, units] of pools) {
    const pool = key.slice(key.indexOf("/") + 1);
    const parents = [...units.keys()].map((id) => {
      const quota = quotas.get(`${id}/${pool}`);
      return quota ? { ...quota, id } : { id, share: 0, deserved: 0, weight: 1, limit: null };
    });
    divide(parents, capacity.get(key) ?? 0);
    for (const parent of parents) {
      const group = units.get(parent.id);
      divide(group, parent.share);
      for (const m of group) {
        if (!shares.has(m.id)) shares.set(m.id, new Map());
        shares.get(m.id).set(m.pool, m.share);
      }
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
