// The emulator's own Cloud Tasks REST API: the routes Google's REST clients call, nothing else.
// Paths are relative to the page, so the console works at / and under a mount prefix.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
  }
}

async function call(method, path, { query = {}, body } = {}) {
  const url = new URL(path, document.baseURI);
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let data = {};
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      throw new ApiError(response.status, `${method} ${url.pathname}: not JSON (${response.status})`, text);
    }
  }
  if (!response.ok) {
    // Google's error shape: {"error": {"code", "message", "status"}}.
    const message = data?.error?.message || `${method} ${url.pathname} answered ${response.status}`;
    throw new ApiError(response.status, message, data);
  }
  return data;
}

async function everyPage(path, key, query = {}) {
  const items = [];
  let pageToken;
  do {
    const page = await call("GET", path, { query: { ...query, pageToken } });
    items.push(...(page[key] || []));
    pageToken = page.nextPageToken;
  } while (pageToken);
  return items;
}

export const TASKS_PAGE = 100;

export const api = {
  /** Projects the emulator has seen (Cloud Tasks has no ListProjects). */
  projects: () => call("GET", "console/projects").then((r) => r.projects),
  locations: (project) => everyPage(`v2/projects/${project}/locations`, "locations"),
  queues: (location) => everyPage(`v2/${location}/queues`, "queues"),
  /** v2 has no queue statistics; v2beta3's GetQueue returns them with a read mask. */
  stats: (queue) => call("GET", `v2beta3/${queue}`, { query: { readMask: "stats" } }).then((q) => q.stats || {}),
  pause: (queue) => call("POST", `v2/${queue}:pause`, { body: {} }),
  resume: (queue) => call("POST", `v2/${queue}:resume`, { body: {} }),
  purge: (queue) => call("POST", `v2/${queue}:purge`, { body: {} }),
  /** UpdateQueue: only the fields named in ``paths`` change. */
  updateQueue: (queue, paths) =>
    call("PATCH", `v2/${queue.name}`, { query: { updateMask: paths.join(",") }, body: queue }),
  tasks: (queue, pageToken) =>
    call("GET", `v2/${queue}/tasks`, { query: { pageSize: TASKS_PAGE, pageToken, responseView: "BASIC" } }),
  task: (name) => call("GET", `v2/${name}`, { query: { responseView: "FULL" } }),
  runTask: (name) => call("POST", `v2/${name}:run`, { body: {} }),
  deleteTask: (name) => call("DELETE", `v2/${name}`),
};

/** The last path segment: the id in ``projects/P/locations/L/queues/ID``. */
export function shortId(name) {
  return name.slice(name.lastIndexOf("/") + 1);
}
