// The service's public API, called as any client calls it: a bearer token, JSON in and out.
// Every error is the API's own JSON ({"error", "message", "fields"?}), kept whole so the forms
// can show each field's message where the field is.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }

  /** The 422's field errors: [{field, message, type}]. */
  get fields() {
    return Array.isArray(this.body?.fields) ? this.body.fields : [];
  }
}

let token = null;
const unauthorizedHandlers = [];

export function setToken(value) {
  token = value;
}

export function currentToken() {
  return token;
}

/** ``handler(error)`` runs when a call answers 401 (the token expired or was revoked). */
export function onUnauthorized(handler) {
  unauthorizedHandlers.push(handler);
}

export async function call(method, path, { body, query, auth = true, signal } = {}) {
  const url = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = { Accept: "application/json" };
  if (auth && token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "the service cannot be reached", null);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message = data?.message || `${method} ${url.pathname} answered ${response.status}`;
    const error = new ApiError(response.status, message, data);
    if (response.status === 401 && auth) unauthorizedHandlers.forEach((handler) => handler(error));
    throw error;
  }
  return data;
}

export const api = {
  config: () => call("GET", "playground/config", { auth: false }),
  devToken: (userId) => call("POST", "api/dev/token", { body: { userId }, auth: false }),
  me: () => call("GET", "api/me"),
  jobs: (cursor, limit = 12) => call("GET", "api/jobs", { query: { limit, cursor } }),
  job: (jobId) => call("GET", `api/jobs/${encodeURIComponent(jobId)}`),
  create: (type, body) => call("POST", `api/jobs/${type}`, { body }),
  cancel: (jobId) => call("POST", `api/jobs/${encodeURIComponent(jobId)}/cancel`),
};
