// The pager of a paged table: "first–last of total", the page size, and a button each way.
// `current` holds the page's offset and limit; `go` opens the table at another.

import { h } from "./dom.js";
import { number } from "./format.js";

export const PAGE_SIZES = [25, 50, 100, 250];

// The page size the address asks for, if it is one the pager offers, else `fallback`.
export function pageSize(params, fallback) {
  const asked = Number(params.get("limit"));
  return PAGE_SIZES.includes(asked) ? asked : fallback;
}

// `ids` name the range and the two buttons (tests and links find them by id), `labels` the
// buttons' words, backwards first.
export function pager(current, shown, total, go, { ids, labels }) {
  const first = shown ? current.offset + 1 : 0;
  const sizes = h("select", {
    "aria-label": "Rows per page", onchange: (e) => go({ ...current, limit: Number(e.target.value), offset: 0 }),
  }, PAGE_SIZES.map((n) => h("option", { value: n, selected: n === current.limit }, `${n} per page`)));
  return h("div", { class: "pager" },
    h("span", { id: ids.range }, `${first}–${current.offset + shown} of ${number(total)}`),
    sizes,
    h("button", {
      type: "button", id: ids.back, disabled: current.offset === 0,
      onclick: () => go({ ...current, offset: Math.max(0, current.offset - current.limit) }),
    }, labels[0]),
    h("button", {
      type: "button", id: ids.on, disabled: current.offset + shown >= total,
      onclick: () => go({ ...current, offset: current.offset + current.limit }),
    }, labels[1]));
}
