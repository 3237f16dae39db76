// The queues table. Rows are updated in place (never rebuilt), so a keyboard user's focus
// stays on the button it is on while statistics change underneath.

import { shortId } from "./api.js";
import { h, humanDuration, seconds } from "./format.js";

const COLUMNS = ["Queue", "State", "Rate limits", "Retry", "Tasks", "In flight", "Dispatched/min", "Failed/min"];
const STATE_LABELS = { RUNNING: "Running", PAUSED: "Paused", DISABLED: "Disabled" };

function rateText(rate = {}) {
  const perSecond = rate.maxDispatchesPerSecond ?? 0;
  return `${+Number(perSecond).toFixed(3)}/s, burst ${rate.maxBurstSize ?? 0}, ${rate.maxConcurrentDispatches ?? 0} concurrent`;
}

function retryText(retry = {}) {
  const attempts = retry.maxAttempts ?? 0;
  const duration = seconds(retry.maxRetryDuration);
  return [
    attempts === -1 ? "unlimited attempts" : `${attempts} attempts`,
    `backoff ${humanDuration(retry.minBackoff)}–${humanDuration(retry.maxBackoff)}`,
    `${retry.maxDoublings ?? 0} doublings`,
    duration === 0 ? "no time limit" : `within ${humanDuration(duration)}`,
  ].join(", ");
}

export class QueueTable {
  /**
   * @param {HTMLTableElement} table
   * @param {{select(name), pause(name), resume(name), purge(name), edit(name)}} actions
   */
  constructor(table, actions) {
    this.body = table.tBodies[0];
    this.actions = actions;
    this.rows = new Map();
    markTableRoles(table);
  }

  /** ``entries``: [{queue, stats, failedLastMinute, failedComplete}] sorted by name. */
  render(entries, selected) {
    const wanted = new Set(entries.map((entry) => entry.queue.name));
    for (const [name, row] of this.rows) {
      if (!wanted.has(name)) {
        row.tr.remove();
        this.rows.delete(name);
      }
    }
    entries.forEach((entry, index) => {
      const row = this.rows.get(entry.queue.name) || this.createRow(entry.queue.name);
      this.fill(row, entry, selected);
      placeAt(this.body, row.tr, index);
    });
  }

  createRow(name) {
    const id = shortId(name);
    const cells = Object.fromEntries(COLUMNS.map((label) => [label, h("td", { role: "cell", dataset: { label } })]));
    for (const label of ["Tasks", "In flight", "Dispatched/min", "Failed/min"]) cells[label].classList.add("num");
    const open = h("button", {
      type: "button", class: "link mono", text: id, title: name,
      "aria-label": `Show the tasks of queue ${id}`, onclick: () => this.actions.select(name),
    });
    cells.Queue.append(open);
    const badge = h("span", { class: "badge" });
    cells.State.append(badge);
    const toggle = h("button", { type: "button" });
    toggle.addEventListener("click", () => {
      if (toggle.dataset.action === "resume") this.actions.resume(name);
      else this.actions.pause(name);
    });
    const purge = h("button", {
      type: "button", class: "danger", text: "Purge", "aria-label": `Purge queue ${id}`,
      onclick: () => this.actions.purge(name),
    });
    const edit = h("button", {
      type: "button", text: "Edit", "aria-label": `Edit rate and retry of queue ${id}`,
      onclick: () => this.actions.edit(name),
    });
    const actions = h("td", { role: "cell", class: "actions" }, toggle, purge, edit);
    const tr = h("tr", { role: "row", dataset: { queue: id } }, ...Object.values(cells), actions);
    const row = { tr, cells, badge, toggle, open };
    this.rows.set(name, row);
    return row;
  }

  fill(row, { queue, stats, failedLastMinute, failedComplete }, selected) {
    const id = shortId(queue.name);
    const state = queue.state || "RUNNING";
    row.badge.dataset.state = state;
    row.badge.textContent = STATE_LABELS[state] || state;
    const paused = state === "PAUSED";
    row.toggle.dataset.action = paused ? "resume" : "pause";
    row.toggle.textContent = paused ? "Resume" : "Pause";
    row.toggle.setAttribute("aria-label", `${paused ? "Resume" : "Pause"} queue ${id}`);
    row.toggle.disabled = state === "DISABLED";
    row.cells["Rate limits"].textContent = rateText(queue.rateLimits);
    row.cells.Retry.textContent = retryText(queue.retryConfig);
    // proto3 JSON leaves zero counts out: a loaded stats object without one means 0.
    const count = (field) => (stats ? String(stats[field] ?? 0) : "…");
    row.cells.Tasks.textContent = count("tasksCount");
    row.cells["In flight"].textContent = count("concurrentDispatchesCount");
    row.cells["Dispatched/min"].textContent = count("executedLastMinuteCount");
    row.cells["Failed/min"].textContent = (failedComplete ? "" : "≥ ") + failedLastMinute;
    row.cells["Failed/min"].title = failedComplete ? "" : "counted from the events held: at least this many";
    row.tr.classList.toggle("selected", queue.name === selected);
    row.open.setAttribute("aria-current", queue.name === selected ? "true" : "false");
  }
}

/** Puts ``row`` at ``index`` only if it is not there already: moving a node in the DOM
 * takes the focus away from whatever inside it had it. */
export function placeAt(body, row, index) {
  const current = body.children[index];
  if (current !== row) body.insertBefore(row, current || null);
}

/** Table roles stated explicitly: at phone widths the cells are laid out as cards, and a
 * table whose display changed may otherwise stop being one for assistive technology. */
export function markTableRoles(table) {
  table.setAttribute("role", "table");
  for (const group of table.querySelectorAll("thead, tbody")) group.setAttribute("role", "rowgroup");
  for (const row of table.querySelectorAll("thead tr")) row.setAttribute("role", "row");
  for (const header of table.querySelectorAll("thead th")) header.setAttribute("role", "columnheader");
}
