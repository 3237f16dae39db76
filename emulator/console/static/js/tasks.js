// One queue's tasks (ListTasks, BASIC view, paged) and a task's detail (GetTask, FULL view:
// headers and body). Rows are updated in place, keyed by task name.

import { api, shortId } from "./api.js";
import { decodeBody, h, humanDuration, plural, rpcCodeName, taskTarget, timeElement } from "./format.js";
import { markTableRoles, placeAt } from "./queues.js";

const COLUMNS = ["Task", "Scheduled", "Dispatches", "Responses", "Last status", "Last response", "Next retry"];

/** What the last attempt came to: nothing yet, on the wire, or its answer. */
export function lastAttemptState(task) {
  const last = task.lastAttempt;
  if (!last || !last.dispatchTime) return "none";
  if (!last.responseTime) return "in-flight";
  return (last.responseStatus?.code ?? 0) === 0 ? "succeeded" : "failed";
}

export class TaskTable {
  /** @param {{run(name), remove(name), open(name)}} actions */
  constructor(table, actions) {
    this.table = table;
    this.body = table.tBodies[0];
    this.actions = actions;
    this.rows = new Map();
    markTableRoles(table);
  }

  render(tasks) {
    const wanted = new Set(tasks.map((task) => task.name));
    for (const [name, row] of this.rows) {
      if (wanted.has(name)) continue;
      // A row going away must not take the keyboard focus with it.
      if (row.tr.contains(document.activeElement)) document.getElementById("tasks-heading").focus();
      row.tr.remove();
      this.rows.delete(name);
    }
    tasks.forEach((task, index) => {
      const row = this.rows.get(task.name) || this.createRow(task.name);
      this.fill(row, task);
      placeAt(this.body, row.tr, index);
    });
  }

  clear() {
    this.render([]);
  }

  createRow(name) {
    const id = shortId(name);
    const cells = Object.fromEntries(COLUMNS.map((label) => [label, h("td", { role: "cell", dataset: { label } })]));
    cells.Dispatches.classList.add("num");
    cells.Responses.classList.add("num");
    cells.Task.append(h("button", {
      type: "button", class: "link mono", text: id, title: name,
      "aria-label": `Details of task ${id}`, onclick: () => this.actions.open(name),
    }));
    const run = h("button", {
      type: "button", text: "Run now", "aria-label": `Run now: task ${id}`, onclick: () => this.actions.run(name),
    });
    const remove = h("button", {
      type: "button", class: "danger", text: "Delete", "aria-label": `Delete task ${id}`,
      onclick: () => this.actions.remove(name),
    });
    const tr = h("tr", { role: "row", dataset: { task: id } }, ...Object.values(cells), h("td", { role: "cell", class: "actions" }, run, remove));
    const row = { tr, cells };
    this.rows.set(name, row);
    return row;
  }

  fill(row, task) {
    const { cells } = row;
    const state = lastAttemptState(task);
    const last = task.lastAttempt || {};
    cells.Scheduled.replaceChildren(timeElement(task.scheduleTime));
    cells.Dispatches.textContent = String(task.dispatchCount ?? 0);
    cells.Responses.textContent = String(task.responseCount ?? 0);
    const status = { none: "—", "in-flight": "in flight" }[state] ?? rpcCodeName(last.responseStatus?.code);
    cells["Last status"].replaceChildren(h("span", {
      class: state === "failed" ? "status-fail" : state === "succeeded" ? "status-ok" : "", text: status,
    }));
    cells["Last response"].replaceChildren(
      ...(last.responseTime ? [`${last.responseStatus?.message || ""} `, timeElement(last.responseTime)] : ["—"]),
    );
    cells["Next retry"].replaceChildren(state === "failed" ? timeElement(task.scheduleTime) : "—");
    row.tr.dataset.dispatches = String(task.dispatchCount ?? 0);
  }
}

function grid(entries) {
  return h("dl", { class: "detail-grid" }, entries.flatMap(([term, value]) => [h("dt", { text: term }), h("dd", {}, value)]));
}

/** Fills and opens the task dialog with GetTask's FULL view. */
export async function showTaskDetail(name) {
  const task = await api.task(name);
  const dialog = document.getElementById("task-detail");
  const target = taskTarget(task);
  const last = task.lastAttempt || {};
  document.getElementById("detail-name").textContent = shortId(task.name);
  const headers = Object.entries(target.headers).sort(([a], [b]) => a.localeCompare(b));
  const body = decodeBody(target.body);
  const oidc = task.httpRequest?.oidcToken;
  const content = [
    grid([
      ["Name", h("span", { class: "mono", text: task.name })],
      ["Target", h("span", { class: "mono", text: `${target.method} ${target.url}` })],
      ["Scheduled", timeElement(task.scheduleTime, { withMillis: true })],
      ["Created", timeElement(task.createTime, { withMillis: true })],
      ["Dispatch deadline", humanDuration(task.dispatchDeadline)],
      ["Dispatches", String(task.dispatchCount ?? 0)],
      ["Responses", String(task.responseCount ?? 0)],
      ["First dispatch", timeElement(task.firstAttempt?.dispatchTime, { withMillis: true })],
      ["Last attempt", last.dispatchTime
        ? h("span", {}, timeElement(last.dispatchTime, { withMillis: true }),
          last.responseTime ? ` → ${rpcCodeName(last.responseStatus?.code)} (${last.responseStatus?.message || ""})` : " → in flight")
        : "—"],
      ...(oidc ? [["OIDC token", `${oidc.serviceAccountEmail}${oidc.audience ? `, audience ${oidc.audience}` : ""}`]] : []),
    ]),
    h("h3", { id: "detail-headers-heading", text: `Headers (${headers.length})` }),
    headers.length
      ? h("table", { "aria-labelledby": "detail-headers-heading", id: "detail-headers" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Header" }), h("th", { scope: "col", text: "Value" }))),
        h("tbody", {}, headers.map(([key, value]) => h("tr", {}, h("th", { scope: "row", class: "mono", text: key }), h("td", { class: "mono", text: value })))))
      : h("p", { class: "empty", text: "No headers." }),
    h("h3", { id: "detail-body-heading", text: `Body (${body.kind})` }),
    body.text
      ? h("pre", { id: "detail-payload", tabindex: "0", "aria-labelledby": "detail-body-heading", text: body.text })
      : h("p", { class: "empty", text: "No body." }),
  ];
  document.getElementById("detail-body").replaceChildren(...content);
  const opener = document.activeElement;
  dialog.addEventListener("close", () => opener?.isConnected && opener.focus(), { once: true });
  dialog.showModal();
  document.getElementById("detail-close").focus();
}

export function summary(count, more) {
  return more ? `${plural(count, "task")} shown; more below.` : `${plural(count, "task")}.`;
}
