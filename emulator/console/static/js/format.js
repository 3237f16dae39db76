// Building elements and formatting the API's values. Text always goes in through
// textContent (never innerHTML): queue names, headers and bodies are data, not markup.

/** h("td", {class: "num", dataset: {label: "Tasks"}}, "3") */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(element.dataset, value);
    else if (key === "text") element.textContent = value;
    else if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else element.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const TIME = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});
const DATE_TIME = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

/** A <time> for an RFC 3339 timestamp: the clock time today, the date too otherwise. */
export function timeElement(iso, { withMillis = false } = {}) {
  if (!iso) return document.createTextNode("—");
  const when = new Date(iso);
  const today = new Date().toDateString() === when.toDateString();
  let text = (today ? TIME : DATE_TIME).format(when);
  if (withMillis) text += "." + String(when.getMilliseconds()).padStart(3, "0");
  return h("time", { datetime: iso, title: iso }, text);
}

/** "3600s" / "0.100s" (protobuf JSON durations) as seconds. */
export function seconds(duration) {
  if (duration === undefined || duration === null || duration === "") return 0;
  return Number(String(duration).replace(/s$/, ""));
}

/** Seconds for people: 0.1 s, 45 s, 10 min, 1 h, 2 d (a number never parted from its unit). */
export function humanDuration(value) {
  const s = typeof value === "number" ? value : seconds(value);
  const nb = "\u00a0";
  if (s === 0) return `0${nb}s`;
  if (s < 60) return `${+s.toFixed(3)}${nb}s`;
  if (s < 3600) return `${+(s / 60).toFixed(1)}${nb}min`;
  if (s < 86400) return `${+(s / 3600).toFixed(1)}${nb}h`;
  return `${+(s / 86400).toFixed(1)}${nb}d`;
}

export function plural(count, one, many = one + "s") {
  return `${count} ${count === 1 ? one : many}`;
}

/** A task body (base64 in the JSON) as text when it is UTF-8, pretty-printed when JSON. */
export function decodeBody(base64) {
  if (!base64) return { text: "", kind: "empty" };
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return { text: base64, kind: `binary, ${bytes.length} bytes, shown as base64` };
  }
  try {
    return { text: JSON.stringify(JSON.parse(text), null, 2), kind: `JSON, ${bytes.length} bytes` };
  } catch {
    return { text, kind: `text, ${bytes.length} bytes` };
  }
}

/** google.rpc codes the REST API names in Attempt.responseStatus.code. */
const RPC_CODES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
  "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
  "UNAUTHENTICATED",
];

export function rpcCodeName(code) {
  return RPC_CODES[code ?? 0] ?? String(code);
}

/** Where and how a task is delivered, whichever target it has. */
export function taskTarget(task) {
  const http = task.httpRequest;
  if (http) return { method: http.httpMethod || "POST", url: http.url || "", headers: http.headers || {}, body: http.body };
  const app = task.appEngineHttpRequest;
  if (app) {
    const service = app.appEngineRouting?.service ? `${app.appEngineRouting.service}: ` : "";
    return { method: app.httpMethod || "POST", url: service + (app.relativeUri || "/"), headers: app.headers || {}, body: app.body };
  }
  return { method: "", url: "", headers: {}, body: undefined };
}
