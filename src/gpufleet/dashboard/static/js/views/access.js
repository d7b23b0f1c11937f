// Access administration for administrators: service accounts, users' access keys, access rules
// by subject and scope, and the audit log, all through Run:ai's paths.

import { get, send } from "../api.js";
import { errorLine, h, replace } from "../dom.js";
import { when as localTime } from "../format.js";

const ACCOUNTS = "/api/v1/service-accounts";
const RULES = "/api/v1/authorization/access-rules";

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
  const toggle = (account) => h("button", {
    type: "button",
    class: "link",
    onclick: async () => {
      await send("PATCH", `${ACCOUNTS}/${account.id}`, { enabled: !account.enabled });
      await reload();
    },
  }, account.enabled ? "Disable" : "Enable");
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
  ], (await get("/api/v1/administration/access-keys")).body.accessKeys, "No access keys."));
  return part;
}

function rulesSection(reload) {
  const subject = h("input", { name: "ruleSubject", placeholder: "subject contains" });
  const scopeType = h("select", { name: "ruleScopeType" },
    ["", "tenant", "cluster", "department", "project"].map((v) => h("option", { value: v }, v || "any scope")));
  const scope = h("input", { name: "ruleScope", placeholder: "scope name contains" });
  const form = h("form", { class: "inline", id: "rule-filter" }, subject, scopeType, scope, h("button", { type: "submit" }, "Filter"));
  const part = section("access-rules", "Access rules", form);
  form.addEventListener("submit", (event) => { event.preventDefault(); part.load(); });
  const revoke = (rule) => h("button", {
    type: "button",
    class: "link",
    onclick: async () => {
      await send("DELETE", `${RULES}/${rule.id}`);
      await reload();
    },
  }, "Revoke");
  part.load = () => fill(part, async () => {
    const filterBy = [];
    if (subject.value.trim()) filterBy.push(`subjectId=@${subject.value.trim()}`);
    if (scopeType.value) filterBy.push(`scopeType==${scopeType.value}`);
    if (scope.value.trim()) filterBy.push(`scopeName=@${scope.value.trim()}`);
    const { body } = await get(RULES, { filterBy: filterBy.join(",") || undefined, sortBy: "subjectId", limit: 500 });
    return h("div", {},
      h("p", { class: "muted", id: "rule-count" }, `${body.totalRecords} rules`),
      table("access-rule-table", [
        ["Subject", (r) => `${r.subjectType} ${r.subjectId}`],
        ["Role", (r) => r.roleName],
        ["Scope", (r) => `${r.scopeType} ${r.scopeName}`],
        ["Created by", (r) => r.createdBy],
        ["", revoke],
      ], body.accessRules, "No rules match."));
  });
  return part;
}

function auditSection() {
  const part = section("audit-log", "Audit log", h("p", { class: "muted" }, "The last 24 hours, newest first."));
  part.load = () => fill(part, async () => {
    const end = new Date();
    const start = new Date(end.getTime() - 24 * 3600 * 1000);
    const { body } = await get("/api/v1/audit/log", {
      start: start.toISOString(), end: end.toISOString(), sortBy: "timestamp", sortOrder: "desc", numberOfSamples: 100,
    });
    return table("audit-table", [
      ["Time", (e) => when(e.timestamp)],
      ["Subject", (e) => e.subject],
      ["Action", (e) => e.action],
      ["Entity", (e) => [e.entity_type, e.entity_name || e.entity_id].filter(Boolean).join(" ")],
      ["Source", (e) => e.source_ip || e.metadata?.sourceAddress || ""],
    ], body.audit_logs, "Nothing happened.");
  });
  return part;
}

export async function renderAccess(view, isCurrent) {
  const parts = [];
  const reload = async () => { if (isCurrent()) await Promise.all(parts.map((p) => p.load())); };
  parts.push(accountsSection(reload), keysSection(), rulesSection(reload), auditSection());
  replace(view, h("h1", {}, "Access"), parts.map((p) => p.node));
  await reload();
}
