// The public API, and the access token kept in sessionStorage for this browser tab.

const TOKEN_KEY = "gpufleet.token";
const EXPIRES_KEY = "gpufleet.tokenExpiresAt";
const SUBJECT_KEY = "gpufleet.clientId";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function signedIn() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const expiresAt = Number(sessionStorage.getItem(EXPIRES_KEY) || 0);
  return Boolean(token) && expiresAt > Date.now();
}

export function subject() {
  return sessionStorage.getItem(SUBJECT_KEY) || "";
}

export function signOut() {
  for (const key of [TOKEN_KEY, EXPIRES_KEY, SUBJECT_KEY]) sessionStorage.removeItem(key);
  window.dispatchEvent(new Event("gpufleet:signed-out"));
}

async function errorFrom(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && typeof body.message === "string") message = body.message;
  } catch {
    // Not JSON (a proxy's error page): the status line is the best message we have.
  }
  return new ApiError(response.status, message);
}

export async function signIn(clientId, clientSecret) {
  const response = await fetch("/api/v1/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ grantType: "client_credentials", clientID: clientId, clientSecret }),
  });
  if (!response.ok) throw await errorFrom(response);
  const body = await response.json();
  sessionStorage.setItem(TOKEN_KEY, body.accessToken);
  sessionStorage.setItem(EXPIRES_KEY, String(Date.now() + (body.expiresIn || 0) * 1000));
  sessionStorage.setItem(SUBJECT_KEY, clientId);
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(key, String(item));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// GET a path of the API; returns {status, body}. A 401 signs the tab out.
export async function get(path, params) {
  const response = await fetch(path + query(params), {
    headers: {
      Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}`,
      Accept: "application/json",
    },
  });
  if (response.status === 401) {
    signOut();
    throw await errorFrom(response);
  }
  if (!response.ok) throw await errorFrom(response);
  return { status: response.status, body: await response.json(), headers: response.headers };
}

// POST, PATCH or DELETE with a JSON body; returns the parsed answer (or null when empty).
export async function send(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: {
      Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}`,
      Accept: "application/json",
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    signOut();
    throw await errorFrom(response);
  }
  if (!response.ok) throw await errorFrom(response);
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

// Whether the caller administers access (its permissions include managing access rules).
export async function managesAccess() {
  const { body } = await get("/api/v1/authorization/permissions");
  return body.some((p) => p.resourceType === "access_rules" && p.actions.includes("create"));
}

// GET a path of the API as CSV text (the same question as `get`, answered as a file).
export async function getCsv(path, params) {
  const response = await fetch(path + query(params), {
    headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ""}`, Accept: "text/csv" },
  });
  if (response.status === 401) {
    signOut();
    throw await errorFrom(response);
  }
  if (!response.ok) throw await errorFrom(response);
  return response.text();
}
