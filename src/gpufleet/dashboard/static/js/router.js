// Hash routes: "#/workloads?x=1" is the workloads page with its state in the query.

export function currentRoute() {
  const [path, search = ""] = location.hash.replace(/^#\/?/, "").split("?");
  return {
    parts: path.split("/").filter(Boolean).map(decodeURIComponent),
    params: new URLSearchParams(search),
  };
}

export function navigate(path, params) {
  const search = params && [...params].length ? `?${params}` : "";
  location.hash = `#/${path}${search}`;
}

// A node's page: nodes are named uniquely within their cluster.
export function nodeHref(clusterId, name) {
  return `#/nodes/${encodeURIComponent(clusterId)}/${encodeURIComponent(name)}`;
}
