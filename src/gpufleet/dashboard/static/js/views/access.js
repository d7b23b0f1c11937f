// Access administration: service accounts, users' access keys, access rules by subject and
// scope, and the audit log, all through Run:ai's paths. A system administrator gets them all; a
// department administrator the rules inside its departments, with Revoke on those it may revoke.

import { get, send, subject as signedInAs } from "../api.js";
import { errorLine, h, replace } from "../dom.js";
import { when as localTime } from "../format.js";

const ACCOUNTS = "/api/v1/service-accounts";
const KEYS = "/api/v1/administration/access-keys";
const RULES = "/api/v1/authorization/access-rules";
const AUDIT_PAGE = 100;
// Run:ai's role ids, fixed in gpufleet (docs/access-control.md).
const SYSTEM_ADMINISTRATOR = 1;
const DEPARTMENT_ADMINISTRATOR = 2;
// What a department administrator grants and revokes inside its departments.
const DELEGABLE = new Set([3, 4]);

// What the caller's own rules let it do here, so the view asks only what it will be answered
// and offers only what it may do.
async function callerPowers() {
  const { body } = await get("/api/v1/authorization/me/access-rules", { limit: 500 });
  const rules = body.accessRules?.accessRules ?? [];
  const everything = rules.some((r) => r.roleId === SYSTEM_ADMINISTRATOR && r.scopeType === "tenant");
  const departments = rules.some((r) => r.roleId === DEPARTMENT_ADMINISTRATOR);
  return {
    everything,
    rules: everything || departments,
    // The rules listed to a department administrator all lie inside its departments.
    revokes: (rule) => everything || DELEGABLE.has(rule.roleId),
  };
}

function table(id, columns, rows, empty) {
  if (!rows.length) return h("p", { class: "muted", id }, empty);
  return h("table", { class: "data", id },
    h("thead", {}, h("tr", {}, columns.map(([title]) => h("th", {}, title)))),
    h("tbody", {}, rows.map((row) => h("tr", { dataset: { id: String(row.id ?? "") } },
      columns.map(([, cell]) => h("td", {}, cell(row)))))));
}

function section(id, title, ...controls) {
  const body = h("div", { class: "section-body" }, h("p", { class: "muted" }, "Loading…"));
  return { node: h("section", { class: "panel", id }, h("h2", {}, title), ...controls, body), body };
}

async function fill(part, load) {
  try {
    replace(part.body, await load());
  } catch (error) {
    replace(part.body, errorLine(error));
  }
}

function when(value) {
  return value ? localTime(value) : "never";
}

// Service accounts' and access keys' names by client id: rules and the audit log name their
// subjects by client id, which says little to a reader. Only a system administrator reads
// them; anyone else is shown client ids.
async function subjectNames(powers) {
  const names = new Map();
  if (!powers.everything) return names;
  const [accounts, keys] = await Promise.all([
    get(ACCOUNTS).then((r) => r.body, () => []),
    get(KEYS).then((r) => r.body.accessKeys, () => []),
  ]);
  for (const item of [...accounts, ...keys]) names.set(item.clientId, item.name);
  return names;
}

// A subject by name, its client id beside it (and as the hover text).
function subjectLabel(names, id) {
  const name = names.get(id);
  return name && name !== id ? h("span", { title: id }, name, h("span", { class: "muted" }, ` (${id})`)) : id;
}

// A button that asks before it acts: the first click shows the question with "Yes" and
// "Cancel"; the action's error shows beside it instead of being lost.
function confirmed(label, question, action) {
  const cell = h("span", { class: "confirm" });
  const ask = () => replace(cell,
    h("span", { class: "confirm-question" }, question, " "),
    h("button", { type: "button", class: "link danger", "data-confirm": "yes", onclick: act }, `Yes, ${label.toLowerCase()}`),
    " ",
    h("button", { type: "button", class: "link", "data-confirm": "cancel", onclick: idle }, "Cancel"));
  async function act() {
    try {
      await action();
    } catch (error) {
      replace(cell, errorLine(error), h("button", { type: "button", class: "link", onclick: idle }, "Dismiss"));
    }
  }
  function idle() {
    replace(cell, h("button", { type: "button", class: "link", onclick: ask }, label));
  }
  idle();
  return cell;
}

function accountsSection(reload) {
  const name = h("input", { name: "accountName", placeholder: "new-service-account", pattern: "[a-z][-_a-z0-9]*[a-z0-9]" });
  const secret = h("p", { class: "secret", id: "new-secret", role: "status" });
  const form = h("form", { class: "inline", id: "create-account" }, name, h("button", { type: "submit" }, "Create"), secret);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const created = await send("POST", ACCOUNTS, { name: name.value.trim() });
      secret.textContent = `${created.name}: client id ${created.clientId}, secret ${created.clientSecret} (shown once)`;
      name.value = "";
      await reload();
    } catch (error) {
      secret.textContent = error.message;
    }
  });
  const part = section("service-accounts", "Service accounts", form);
  const toggle = (account) => {
    const change = async () => {
      await send("PATCH", `${ACCOUNTS}/${account.id}`, { enabled: !account.enabled });
      await reload();
    };
    if (!account.enabled) return confirmed("Enable", `Enable ${account.name}?`, change);
    const own = account.clientId === signedInAs() ? " This is the account you are signed in with." : "";
    return confirmed("Disable", `Disable ${account.name}? Its tokens stop working.${own}`, change);
  };
  part.load = () => fill(part, async () => table("service-account-table", [
    ["Name", (a) => a.name],
    ["Client ID", (a) => h("code", {}, a.clientId)],
    ["Enabled", (a) => (a.enabled ? "yes" : "no")],
    ["Last login", (a) => when(a.lastLogin)],
    ["Created by", (a) => a.createdBy],
    ["", toggle],
  ], (await get(ACCOUNTS)).body, "No service accounts."));
  return part;
}

function keysSection() {
  const part = section("access-keys", "Users' access keys");
  part.load = () => fill(part, async () => table("access-key-table", [
    ["Name", (k) => k.name],
    ["Client ID", (k) => h("code", {}, k.clientId)],
    ["Owner", (k) => k.createdBy],
    ["Created", (k) => when(k.createdAt)],
    ["Last login", (k) => when(k.lastLogin)],
  ], (await get(KEYS)).body.accessKeys, "No access keys."));
  return part;
}

function rulesSection(reload, names, powers) {
  const subject = h("input", { name: "ruleSubject", placeholder: "subject contains" });
  const scopeType = h("select", { name: "ruleScopeType" },
    ["", "tenant", "cluster", "department", "project"].map((v) => h("option", { value: v }, v || "any scope")));
  const scope = h("input", { name: "ruleScope", placeholder: "scope name contains" });
  const form = h("form", { class: "inline", id: "rule-filter" }, subject, scopeType, scope, h("button", { type: "submit" }, "Filter"));
  const part = section("access-rules", "Access rules", form);
  form.addEventListener("submit", (event) => { event.preventDefault(); part.load(); });
  const revoke = (rule) => {
    if (!powers.revokes(rule)) return "";
    const own = rule.subjectId === signedInAs() ? " This is your own rule: you lose what it gives you." : "";
    return confirmed("Revoke", `Revoke ${rule.roleName} on ${rule.scopeType} ${rule.scopeName}?${own}`, async () => {
      await send("DELETE", `${RULES}/${rule.id}`);
      await reload();
    });
  };
  part.load = () => fill(part, async () => {
    const filterBy = [];
    if (subject.value.trim()) filterBy.push(`subjectId=@${subject.value.trim()}`);
    if (scopeType.value) filterBy.push(`scopeType==${scopeType.value}`);
    if (scope.value.trim()) filterBy.push(`scopeName=@${scope.value.trim()}`);
    const [{ body }, known] = await Promise.all([
      get(RULES, { filterBy: filterBy.join(",") || undefined, sortBy: "subjectId", limit: 500 }), names(),
    ]);
    return h("div", {},
      h("p", { class: "muted", id: "rule-count" }, `${body.totalRecords} rules`),
      table("access-rule-table", [
        ["Subject", (r) => [`${r.subjectType} `, subjectLabel(known, r.subjectId)]],
        ["Role", (r) => r.roleName],
        ["Scope", (r) => `${r.scopeType} ${r.scopeName}`],
        ["Created by", (r) => r.createdBy],
        ["", revoke],
      ], body.accessRules, "No rules match."));
  });
  return part;
}

// The last day of the audit log, a page at a time ("Load more" while the API has a next page).
function auditSection(names) {
  const part = section("audit-log", "Audit log", h("p", { class: "muted" }, "The last 24 hours, newest first."));
  part.load = () => fill(part, async () => {
    const end = new Date();
    const start = new Date(end.getTime() - 24 * 3600 * 1000);
    const ask = (offset) => get("/api/v1/audit/log", {
      start: start.toISOString(), end: end.toISOString(), sortBy: "timestamp", sortOrder: "desc",
      numberOfSamples: AUDIT_PAGE, offset,
    }).then((r) => r.body);
    const [body, known] = await Promise.all([ask(0), names()]);
    const columns = [
      ["Time", (e) => when(e.timestamp)],
      ["Subject", (e) => subjectLabel(known, e.subject)],
      ["Action", (e) => e.action],
      ["Entity", (e) => [e.entity_type, e.entity_name || e.entity_id].filter(Boolean).join(" ")],
      ["Source", (e) => e.source_ip || e.metadata?.sourceAddress || ""],
    ];
    const shown = table("audit-table", columns, body.audit_logs, "Nothing happened.");
    const rows = shown.querySelector("tbody");
    const status = h("span", { class: "muted", id: "audit-shown" });
    const more = h("button", { type: "button", id: "audit-more" }, "Load more");
    let next = body.next;
    let count = body.audit_logs.length;
    const update = () => {
      more.hidden = next === undefined || next === null;
      status.textContent = `${count} entries shown`;
    };
    more.addEventListener("click", async () => {
      more.disabled = true;
      try {
        const page = await ask(next);
        for (const entry of page.audit_logs) {
          rows.append(h("tr", { dataset: { id: String(entry.id ?? "") } }, columns.map(([, cell]) => h("td", {}, cell(entry)))));
        }
        next = page.next;
        count += page.audit_logs.length;
        update();
      } catch (error) {
        status.replaceWith(errorLine(error));
      } finally {
        more.disabled = false;
      }
    });
    update();
    return h("div", {}, shown, rows ? h("p", { class: "filters" }, status, more) : null);
  });
  return part;
}

export async function renderAccess(view, isCurrent) {
  let powers;
  try {
    powers = await callerPowers();
  } catch (error) {
    replace(view, h("h1", {}, "Access"), errorLine(error));
    return;
  }
  if (!isCurrent()) return;
  const parts = [];
  // Names are looked up once per reload and shared by the rules and the audit log.
  let known = null;
  const names = () => (known ??= subjectNames(powers));
  const reload = async () => {
    known = null;
    if (isCurrent()) await Promise.all(parts.map((p) => p.load()));
  };
  const notes = [];
  if (powers.everything) {
    parts.push(accountsSection(reload), keysSection(), rulesSection(reload, names, powers), auditSection(names));
  } else if (powers.rules) {
    parts.push(rulesSection(reload, names, powers));
    notes.push(h("p", { class: "muted", id: "access-scope" },
      "The rules inside your departments; you revoke their L1 researcher and Viewer rules. ",
      "Service accounts, access keys and the audit log are for system administrators."));
  } else {
    notes.push(h("p", { class: "muted", id: "access-scope" },
      "You administer no access: your rules grant no System or Department administrator role."));
  }
  replace(view, h("h1", {}, "Access"), notes, parts.map((p) => p.node));
  await reload();
}
