// The console's wiring: what is loaded when, and what an event makes stale.
//
// Data comes from the REST API only; the event stream says *when* to ask again (a task event
// refreshes its queue's statistics and, when that queue is open, its task list), so the
// page follows the emulator live without reloading and without a side channel.

import { api, ApiError, shortId } from "./api.js";
import { confirmAction, editQueue } from "./dialogs.js";
import { QueueTable } from "./queues.js";
import { TaskTable, showTaskDetail, summary } from "./tasks.js";
import { FailureCounter, Feed, Timeline } from "./timeline.js";

const ACTIVITY_HISTORY = 2000; // the feed's whole ring: a minute of failures to count
const FILTERED_HISTORY = 200;
const REFRESH_GAP_MS = 400; // at most one burst of REST reads per this, however busy
const STATS_EVERY_MS = 10_000; // "last minute" figures decay with no event to say so

const $ = (id) => document.getElementById(id);

const state = {
  queues: new Map(), // full name -> {queue, stats}
  selected: null, // full name of the queue whose tasks are shown
  tasks: [],
  taskPages: 1,
  moreTasks: null, // nextPageToken of the last page loaded
  filter: { queue: "", task: "" },
};
const dirty = { queues: false, stats: new Set(), tasks: false };
const failures = new FailureCounter();
const timeline = new Timeline($("timeline"));
let activity = null;
let filtered = null;
let refreshTimer = null;
let lastRefresh = 0;
let noticeTimer = null;

function notify(message, tone = "info") {
  const notice = $("notice");
  notice.textContent = message;
  notice.dataset.tone = tone;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { notice.hidden = true; }, tone === "error" ? 8000 : 4000);
}

/** Runs an action; a refusal from the API is shown, never thrown into the console. */
async function attempt(action) {
  try {
    return await action();
  } catch (error) {
    notify(error instanceof ApiError ? error.message : `Unexpected error: ${error}`, "error");
    return undefined;
  }
}

// ------------------------------------------------------------------ loading

async function loadQueues() {
  const projects = await api.projects();
  const locations = (await Promise.all(projects.map((project) => api.locations(project)))).flat();
  const lists = await Promise.all(locations.map((location) => api.queues(location.name)));
  const fresh = new Map();
  for (const queue of lists.flat()) {
    fresh.set(queue.name, { queue, stats: state.queues.get(queue.name)?.stats });
  }
  state.queues = fresh;
  await Promise.all([...fresh.keys()].map(loadStats));
  if (state.selected && !fresh.has(state.selected)) closeTasks();
  renderFilterOptions();
}

async function loadStats(name) {
  const entry = state.queues.get(name);
  if (!entry) return;
  try {
    entry.stats = await api.stats(name);
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    dirty.queues = true; // deleted meanwhile: the next refresh drops it
  }
}

async function loadTasks() {
  if (!state.selected) return;
  const queue = state.selected;
  const tasks = [];
  let token;
  let pages = 0;
  do {
    const page = await api.tasks(queue, token);
    tasks.push(...(page.tasks || []));
    token = page.nextPageToken;
    pages += 1;
  } while (token && pages < state.taskPages);
  if (state.selected !== queue) return; // another queue was opened meanwhile
  state.tasks = tasks;
  state.moreTasks = token || null;
  renderTasks();
}

// ------------------------------------------------------------------ rendering

const queueTable = new QueueTable($("queues"), {
  select: (name) => openTasks(name),
  pause: (name) => attempt(async () => {
    updateQueue(await api.pause(name));
    notify(`Queue ${shortId(name)} paused.`);
  }),
  resume: (name) => attempt(async () => {
    updateQueue(await api.resume(name));
    notify(`Queue ${shortId(name)} resumed.`);
  }),
  purge: (name) => attempt(async () => {
    const count = state.queues.get(name)?.stats?.tasksCount;
    const what = count === undefined ? "every task" : count === 1 ? "its one task" : `all ${count} tasks`;
    const sure = await confirmAction({
      title: `Purge ${shortId(name)}?`,
      message: `This deletes ${what} in the queue. It cannot be undone.`,
      confirmLabel: "Purge queue",
    });
    if (!sure) return;
    updateQueue(await api.purge(name));
    notify(`Queue ${shortId(name)} purged.`);
    dirty.stats.add(name);
    if (name === state.selected) dirty.tasks = true;
    scheduleRefresh();
  }),
  edit: (name) => attempt(async () => {
    const entry = state.queues.get(name);
    if (!entry) return;
    const updated = await editQueue(entry.queue);
    if (updated) {
      updateQueue(updated);
      notify(`Queue ${shortId(name)} updated.`);
    }
  }),
});

const taskTable = new TaskTable($("tasks"), {
  open: (name) => attempt(() => showTaskDetail(name)),
  run: (name) => attempt(async () => {
    await api.runTask(name);
    notify(`Task ${shortId(name)} dispatched.`);
    dirty.tasks = true;
    scheduleRefresh();
  }),
  remove: (name) => attempt(async () => {
    const sure = await confirmAction({
      title: `Delete task ${shortId(name)}?`,
      message: "The task is deleted and will not be dispatched. It cannot be undone.",
      confirmLabel: "Delete task",
    });
    if (!sure) return;
    await api.deleteTask(name);
    state.tasks = state.tasks.filter((task) => task.name !== name);
    renderTasks();
    notify(`Task ${shortId(name)} deleted.`);
  }),
});

function updateQueue(queue) {
  const entry = state.queues.get(queue.name);
  if (entry) entry.queue = queue;
  else state.queues.set(queue.name, { queue, stats: undefined });
  renderQueues();
}

function renderQueues() {
  const names = [...state.queues.keys()].sort();
  const entries = names.map((name) => {
    const { queue, stats } = state.queues.get(name);
    return { queue, stats, failedLastMinute: failures.count(shortId(name)), failedComplete: failures.complete() };
  });
  queueTable.render(entries, state.selected);
  $("queues-empty").hidden = entries.length > 0;
}

function renderTasks() {
  taskTable.render(state.tasks);
  $("tasks-empty").hidden = state.tasks.length > 0;
  $("tasks-summary").textContent = summary(state.tasks.length, Boolean(state.moreTasks));
  $("more-tasks").hidden = !state.moreTasks;
}

function renderFilterOptions() {
  const select = $("filter-queue");
  const ids = [...new Set([...state.queues.keys()].map(shortId))].sort();
  const current = [...select.options].slice(1).map((option) => option.value);
  if (ids.join("\n") === current.join("\n")) return;
  const chosen = select.value;
  select.replaceChildren(select.options[0], ...ids.map((id) => new Option(id, id)));
  select.value = ids.includes(chosen) ? chosen : "";
}

function openTasks(name) {
  state.selected = name;
  state.tasks = [];
  state.taskPages = 1;
  state.moreTasks = null;
  taskTable.clear();
  $("tasks-queue").textContent = shortId(name);
  $("tasks-panel").hidden = false;
  $("tasks-summary").textContent = "Loading…";
  history.replaceState(null, "", `#queue=${encodeURIComponent(name)}`);
  renderQueues();
  $("tasks-heading").focus();
  attempt(loadTasks);
}

function closeTasks() {
  state.selected = null;
  state.tasks = [];
  taskTable.clear();
  $("tasks-panel").hidden = true;
  history.replaceState(null, "", location.pathname + location.search);
  renderQueues();
}

// ------------------------------------------------------------------ refreshing

function scheduleRefresh() {
  if (refreshTimer !== null) return;
  const wait = Math.max(0, lastRefresh + REFRESH_GAP_MS - Date.now());
  refreshTimer = setTimeout(refresh, wait);
}

async function refresh() {
  const wanted = { queues: dirty.queues, stats: [...dirty.stats], tasks: dirty.tasks };
  dirty.queues = false;
  dirty.stats.clear();
  dirty.tasks = false;
  lastRefresh = Date.now();
  await attempt(async () => {
    if (wanted.queues) await loadQueues();
    else await Promise.all(wanted.stats.map(loadStats));
    renderQueues();
    if (wanted.tasks || wanted.queues) await loadTasks();
  });
  refreshTimer = null;
  if (dirty.queues || dirty.stats.size || dirty.tasks) scheduleRefresh();
}

/** What an event makes stale. */
function note(events) {
  for (const event of events) {
    if (event.kind.startsWith("queue_")) {
      dirty.queues = true;
      if (state.selected && shortId(state.selected) === event.queue) dirty.tasks = true;
      continue;
    }
    const names = [...state.queues.keys()].filter((name) => shortId(name) === event.queue);
    if (names.length === 0) dirty.queues = true; // a queue this page has not listed yet
    for (const name of names) dirty.stats.add(name);
    if (state.selected && shortId(state.selected) === event.queue) dirty.tasks = true;
  }
  scheduleRefresh();
}

// ------------------------------------------------------------------ event streams

function setConnection(status) {
  const element = $("connection");
  element.dataset.state = status;
  $("connection-text").textContent = { live: "Live", connecting: "Reconnecting…", down: "Disconnected" }[status];
}

/** The timeline starts again when a stream comes from a new feed (the emulator restarted:
 * its event numbers start again too); a stream that resumed just continues. */
function followEpoch(hello) {
  if (hello.epoch === timeline.epoch) return;
  timeline.reset();
  timeline.epoch = hello.epoch;
}

function openActivity() {
  let hellos = 0;
  activity = new Feed({ history: ACTIVITY_HISTORY }, {
    onHello: (hello) => {
      failures.hello(hello);
      if (!filtered) followEpoch(hello);
      hellos += 1;
      if (hellos > 1) dirty.queues = true; // whatever happened while disconnected
      scheduleRefresh();
    },
    onEvents: (events) => {
      failures.add(events);
      if (!filtered) timeline.add(events);
      note(events);
    },
    onDropped: (count) => {
      failures.lost();
      $("events-note").textContent = `${count} events were not shown: the page could not keep up.`;
      dirty.queues = true;
      scheduleRefresh();
    },
    onState: setConnection,
  });
}

function applyFilter(queue, task) {
  state.filter = { queue, task };
  if (filtered) filtered.close();
  filtered = null;
  timeline.reset();
  timeline.epoch = null;
  const label = [queue && `queue ${queue}`, task && `task ${task}`].filter(Boolean).join(", ");
  $("events-note").textContent = label ? `Showing events of ${label}.` : "";
  if (!queue && !task) {
    // Back to the unfiltered stream: reconnect it to replay its recent history.
    activity.close();
    openActivity();
    return;
  }
  filtered = new Feed({ queue, task, history: FILTERED_HISTORY }, {
    onHello: followEpoch,
    onEvents: (events) => timeline.add(events),
    onDropped: (count) => { $("events-note").textContent = `${count} events were not shown.`; },
    onState: () => {},
  });
}

// ------------------------------------------------------------------ start

$("refresh").addEventListener("click", () => {
  dirty.queues = true;
  scheduleRefresh();
});
$("close-tasks").addEventListener("click", () => {
  const name = state.selected;
  closeTasks();
  queueTable.rows.get(name)?.open.focus();
});
$("more-tasks").addEventListener("click", () => {
  state.taskPages += 1;
  attempt(loadTasks);
});
$("detail-close").addEventListener("click", () => $("task-detail").close());
$("event-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  applyFilter($("filter-queue").value, $("filter-task").value.trim());
});
$("clear-filter").addEventListener("click", () => {
  $("filter-queue").value = "";
  $("filter-task").value = "";
  applyFilter("", "");
});
setInterval(() => {
  if (document.visibilityState !== "visible" || $("connection").dataset.state !== "live") return;
  for (const name of state.queues.keys()) dirty.stats.add(name);
  scheduleRefresh();
}, STATS_EVERY_MS);

openActivity();
attempt(async () => {
  await loadQueues();
  renderQueues();
  const wanted = new URLSearchParams(location.hash.slice(1)).get("queue");
  if (wanted && state.queues.has(wanted)) openTasks(wanted);
  document.body.dataset.ready = "true";
});
