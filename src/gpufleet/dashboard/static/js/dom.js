// Building DOM nodes without innerHTML, so names from the API are always text, never markup.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (key === "class") {
      node.className = value;
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

export function phaseBadge(phase) {
  return h("span", { class: `badge phase-${phase}`, "data-phase": phase }, phase ?? "");
}

export function errorLine(error) {
  return h("p", { class: "error", role: "alert" }, error?.message ?? String(error));
}

// A right-aligned table cell named by `field`, red when `flagged`.
export function numCell(field, content, flagged = false) {
  return h("td", { class: flagged ? "num error" : "num", dataset: { field } }, content);
}

// A labelled figure of a `.figures` row; `field` names it for tests and styles.
export function figure(field, title, value) {
  return h("div", { class: "figure", dataset: { field } }, h("span", { class: "muted" }, title), h("strong", {}, value));
}

// Facts as a definition list, leaving out those without a value.
export function detailList(id, pairs) {
  return h("dl", { class: "details", id },
    pairs.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

// A plain table of rows of cells (text or nodes), or a line saying there are none.
export function table(id, headers, rows, empty) {
  if (!rows.length) return h("p", { class: "muted", id }, empty);
  return h("table", { class: "data", id },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", { class: "wrap" }, c))))));
}
