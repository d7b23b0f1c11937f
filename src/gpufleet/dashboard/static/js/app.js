// The dashboard shell: a hash router over the sign-in, overview, workloads, workload, events,
// capacity, nodes, node, projects, project, departments, usage and access views.

import { managesAccess, signOut, signedIn, subject } from "./api.js";
import { h, replace } from "./dom.js";
import { currentRoute } from "./router.js";
import { renderAccess } from "./views/access.js";
import { renderCapacity } from "./views/capacity.js";
import { renderDepartments } from "./views/departments.js";
import { renderEvents } from "./views/events.js";
import { renderNode } from "./views/node.js";
import { renderNodes } from "./views/nodes.js";
import { renderOverview } from "./views/overview.js";
import { renderProject } from "./views/project.js";
import { renderProjects } from "./views/projects.js";
import { renderSignIn } from "./views/signin.js";
import { renderUsage } from "./views/usage.js";
import { renderWorkload } from "./views/workload.js";
import { renderWorkloads } from "./views/workloads.js";

const view = document.getElementById("view");
const topbar = document.getElementById("topbar");
let generation = 0;

async function route() {
  const mine = ++generation;
  // A view that finishes loading after the user moved on must not draw over the new one.
  const isCurrent = () => mine === generation;
  if (!signedIn()) {
    topbar.hidden = true;
    renderSignIn(view, () => route());
    return;
  }
  topbar.hidden = false;
  document.getElementById("who").textContent = subject();
  showAccessLink();
  const { parts, params } = currentRoute();
  const page = parts[0] || "overview";
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === page);
  }
  try {
    if (page === "workloads" && parts[1]) await renderWorkload(view, parts[1], isCurrent);
    else if (page === "workloads") await renderWorkloads(view, params, isCurrent);
    else if (page === "overview") await renderOverview(view, isCurrent);
    else if (page === "events") await renderEvents(view, params, isCurrent);
    else if (page === "access") await renderAccess(view, isCurrent);
    else if (page === "capacity") await renderCapacity(view, isCurrent);
    else if (page === "nodes" && parts[2]) await renderNode(view, parts[1], parts[2], isCurrent);
    else if (page === "nodes") await renderNodes(view, params, isCurrent);
    else if (page === "projects" && parts[1]) await renderProject(view, parts[1], isCurrent);
    else if (page === "projects") await renderProjects(view, isCurrent);
    else if (page === "departments") await renderDepartments(view, parts[1], isCurrent);
    else if (page === "usage") await renderUsage(view, params, isCurrent);
    else replace(view, h("h1", {}, "Not found"), h("a", { href: "#/overview" }, "Back to the overview"));
  } catch (error) {
    if (isCurrent() && signedIn()) replace(view, h("p", { class: "error", role: "alert" }, error.message));
  }
}

// Only administrators see the Access view in the menu (its paths answer 403 to anyone else).
let accessChecked = false;
async function showAccessLink() {
  if (accessChecked) return;
  accessChecked = true;
  try {
    document.getElementById("nav-access").hidden = !(await managesAccess());
  } catch {
    accessChecked = false;
  }
}

window.addEventListener("gpufleet:signed-out", () => {
  accessChecked = false;
  document.getElementById("nav-access").hidden = true;
});
document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("gpufleet:signed-out", () => route());
window.addEventListener("hashchange", () => route());
route();
