// The engine's event stream, pushed over server-sent events (console/events): a connection
// that reconnects by itself (EventSource resends Last-Event-ID, the server replays what it
// still holds), a timeline that shows the newest events first, and the per-queue count of
// failed attempts over the last minute (Cloud Tasks' statistics have no such figure).

import { h, timeElement } from "./format.js";

const KIND_LABELS = {
  queue_created: "queue created", queue_updated: "queue updated", queue_paused: "queue paused",
  queue_resumed: "queue resumed", queue_purged: "queue purged", queue_deleted: "queue deleted",
  task_created: "task created", task_dispatched: "dispatched", attempt_succeeded: "succeeded",
  attempt_failed: "failed", retry_scheduled: "retry scheduled", task_exhausted: "gave up",
  task_deleted: "task deleted", task_purged: "task purged",
};
const SHOWN = 300; // timeline entries kept on the page
const MINUTE = 60_000;
const BATCH_MS = 50;

/** One EventSource on console/events with the given filter. */
export class Feed {
  constructor({ queue = "", task = "", history = 100 }, { onHello, onEvents, onDropped, onState }) {
    const query = new URLSearchParams({ history: String(history) });
    if (queue) query.set("queue", queue);
    if (task) query.set("task", task);
    this.source = new EventSource(new URL(`console/events?${query}`, document.baseURI));
    let batch = [];
    let scheduled = false;
    // Events come one message at a time; they are handed on in batches, at most every
    // BATCH_MS (a timer, not requestAnimationFrame: that one stops in a hidden tab, and the
    // batch would grow without bound).
    const flush = () => {
      scheduled = false;
      const events = batch;
      batch = [];
      if (events.length) onEvents(events);
    };
    this.source.addEventListener("hello", (message) => {
      flush();
      onHello(JSON.parse(message.data));
    });
    this.source.addEventListener("cloudtasks", (message) => {
      batch.push(JSON.parse(message.data));
      if (!scheduled) {
        scheduled = true;
        setTimeout(flush, BATCH_MS);
      }
    });
    this.source.addEventListener("dropped", (message) => onDropped(JSON.parse(message.data).count));
    this.source.addEventListener("open", () => onState("live"));
    this.source.addEventListener("error", () => {
      onState(this.source.readyState === EventSource.CLOSED ? "down" : "connecting");
    });
  }

  close() {
    this.source.close();
  }
}

/** Failed attempts per queue over the last minute of the server's clock. */
export class FailureCounter {
  constructor() {
    this.failures = new Map(); // queue id -> [ms]
    this.serverOffset = 0; // server clock minus this page's clock
    this.completeFrom = null; // server time (ms) from which every event was seen
    this.epoch = null;
    this.lastId = 0; // events are counted once, however often they are replayed
  }

  /** A stream (re)opened. A resumed one continues the count; a new feed (the emulator
   * restarted) starts it again from what that feed holds. */
  hello({ epoch, now, since }) {
    this.serverOffset = Date.parse(now) - Date.now();
    if (epoch === this.epoch) return;
    this.epoch = epoch;
    this.failures.clear();
    this.lastId = 0;
    this.completeFrom = since ? Date.parse(since) : null;
  }

  now() {
    return Date.now() + this.serverOffset;
  }

  /** Events were lost (a slow connection): counts are lower bounds for a minute. */
  lost() {
    this.completeFrom = this.now();
  }

  add(events) {
    for (const event of events) {
      if (event.id <= this.lastId) continue;
      this.lastId = event.id;
      if (event.kind !== "attempt_failed") continue;
      const list = this.failures.get(event.queue) || [];
      list.push(Date.parse(event.time));
      this.failures.set(event.queue, list);
    }
  }

  count(queueId) {
    const from = this.now() - MINUTE;
    const list = (this.failures.get(queueId) || []).filter((t) => t > from);
    this.failures.set(queueId, list);
    return list.length;
  }

  complete() {
    return this.completeFrom === null || this.completeFrom <= this.now() - MINUTE;
  }
}

function describe(event) {
  const parts = [];
  if (event.attempt) parts.push(`attempt ${event.attempt}`);
  if (event.status !== null && event.status !== undefined) parts.push(`HTTP ${event.status}`);
  if (event.retryAt) parts.push("next at");
  const text = parts.join(", ");
  const pieces = [text];
  if (event.retryAt) pieces.push(" ", timeElement(event.retryAt, { withMillis: true }));
  if (event.detail) pieces.push((text || event.retryAt ? " · " : "") + event.detail);
  return pieces;
}

export class Timeline {
  constructor(list) {
    this.list = list;
    this.seen = new Set();
    this.epoch = null; // the feed whose events are shown
  }

  reset() {
    this.list.replaceChildren();
    this.seen.clear();
  }

  /** ``events`` oldest first; each is shown once (a reconnection may replay some). */
  add(events) {
    const fragment = document.createDocumentFragment();
    for (let index = events.length - 1; index >= 0; index -= 1) {
      const event = events[index];
      if (this.seen.has(event.id)) continue;
      this.seen.add(event.id);
      fragment.append(h("li", { dataset: { id: event.id, kind: event.kind, queue: event.queue, task: event.task || "" } },
        timeElement(event.time, { withMillis: true }),
        h("span", { class: "kind", text: KIND_LABELS[event.kind] || event.kind }),
        h("span", { class: "where mono", text: event.task ? `${event.queue} / ${event.task}` : event.queue }),
        h("span", { class: "detail" }, describe(event)),
      ));
    }
    this.list.prepend(fragment);
    while (this.list.children.length > SHOWN) this.list.lastElementChild.remove();
    if (this.seen.size > SHOWN * 4) {
      this.seen = new Set([...this.list.children].map((li) => Number(li.dataset.id)));
    }
  }
}
