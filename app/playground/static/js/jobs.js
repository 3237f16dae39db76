// The user's jobs, newest first: the first page of GET /api/jobs, older pages by its cursor,
// and every jobUpdate applied to its card in place (a stale update, older than what the card
// shows, is dropped: the socket's snapshot and a create's answer can arrive in any order).

import { ApiError, api } from "./api.js";
import { IMAGE_TYPES, TYPE_NAMES, renderResults, resultUrls } from "./results.js";

const FINISHED = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
const CANCELLABLE = new Set(["PENDING", "PROCESSING", "WAITING", "SCHEDULED"]);
const STATUS_TEXT = {
  PENDING: "Pending",
  WAITING: "Waiting",
  SCHEDULED: "Scheduled",
  PROCESSING: "Processing",
  COMPLETED: "Completed",
  FAILED: "Failed",
  CANCELLED: "Cancelled",
};
const TITLES = {
  "image-generation": "Image",
  "video-generation": "Video",
  "image-upscale": "Upscale",
  "batch-generation": "Batch",
};

export function isFinished(job) {
  return FINISHED.has(job.status);
}

export class JobList {
  /**
   * `hooks`: {actions: {upscale, animate}, cancelEnabled, notify(text), onStatusChange(job),
   * onNewJob(job, {listed})}.
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.jobs = new Map(); // jobId -> {job, summary, node}
    this.cursor = null;
    this.complete = false;
    this.list = document.getElementById("job-list");
    this.more = document.getElementById("more-jobs");
    this.empty = document.getElementById("jobs-empty");
    this.more.addEventListener("click", () => this.loadMore());
  }

  clear() {
    this.jobs.clear();
    this.list.replaceChildren();
    this.cursor = null;
    this.complete = false;
    this.more.hidden = true;
  }

  async reload() {
    this.clear();
    await this.loadMore();
  }

  async loadMore() {
    this.more.disabled = true;
    try {
      const page = await api.jobs(this.cursor || undefined);
      for (const job of page.jobs) this.apply(job, undefined, { listed: true });
      this.cursor = page.nextCursor;
      this.complete = !page.nextCursor;
      this.more.hidden = this.complete;
    } finally {
      this.more.disabled = false;
      this.refreshEmpty();
    }
  }

  refreshEmpty() {
    this.empty.hidden = this.jobs.size > 0;
  }

  /** Records what the page sent for a job it created (the API's view has no prompt). */
  created(job, summary) {
    const known = this.jobs.get(job.jobId);
    if (known) {
      known.summary = summary;
      this.render(known);
    }
    this.apply(job, summary);
  }

  /**
   * A job view from any source: a page (`listed`), a create's answer, a jobUpdate, an SSE event.
   * A job not shown yet is added, unless it is older than the pages loaded so far.
   */
  apply(update, summary, { listed = false } = {}) {
    const known = this.jobs.get(update.jobId);
    if (known) {
      if (update.updatedAt && known.job.updatedAt && update.updatedAt < known.job.updatedAt) return;
      const before = known.job.status;
      known.job = { ...known.job, ...update };
      if (summary) known.summary = summary;
      this.render(known);
      if (before !== known.job.status) this.statusChanged(known.job, before);
      return;
    }
    if (!update.type || !update.createdAt) return; // a partial update of a job not shown
    const oldest = this.oldestShown();
    if (!listed && !this.complete && oldest && update.createdAt < oldest) return; // a later page's
    const entry = { job: update, summary: summary || "", node: null };
    this.jobs.set(update.jobId, entry);
    this.render(entry);
    this.insert(entry);
    this.refreshEmpty();
    this.hooks.onNewJob?.(update, { listed });
    if (!listed && isFinished(update)) this.statusChanged(update); // finished before we knew it
  }

  has(jobId) {
    return this.jobs.has(jobId);
  }

  oldestShown() {
    let oldest = null;
    for (const { job } of this.jobs.values()) if (!oldest || job.createdAt < oldest) oldest = job.createdAt;
    return oldest;
  }

  insert(entry) {
    const key = [entry.job.createdAt, entry.job.jobId];
    for (const sibling of this.list.children) {
      const other = this.jobs.get(sibling.dataset.jobId)?.job;
      if (other && (other.createdAt < key[0] || (other.createdAt === key[0] && other.jobId < key[1]))) {
        this.list.insertBefore(entry.node, sibling);
        return;
      }
    }
    this.list.append(entry.node);
  }

  statusChanged(job) {
    this.hooks.onStatusChange?.(job);
    const title = TITLES[job.type] || "Job";
    if (job.status === "COMPLETED") this.hooks.notify(`${title} job completed.`);
    else if (job.status === "FAILED") this.hooks.notify(`${title} job failed: ${job.error || "no reason given"}`);
    else if (job.status === "CANCELLED") this.hooks.notify(`${title} job cancelled.`);
  }

  unfinished() {
    return [...this.jobs.values()].map((entry) => entry.job).filter((job) => !isFinished(job));
  }

  /** Image results of the jobs shown, newest first, for the picker. */
  imageResults() {
    const results = [];
    for (const child of this.list.children) {
      const job = this.jobs.get(child.dataset.jobId)?.job;
      if (!job || job.status !== "COMPLETED" || !IMAGE_TYPES.has(job.type)) continue;
      const urls = resultUrls(job);
      urls.forEach((url, index) => {
        const which = urls.length > 1 ? ` ${index + 1} of ${urls.length}` : "";
        results.push({ url, label: `the ${TYPE_NAMES[job.type]} result${which} of job ${job.jobId}` });
      });
    }
    return results;
  }

  render(entry) {
    const { job } = entry;
    const title = TITLES[job.type] || job.type;
    const node = entry.node || document.createElement("li");
    entry.node = node;
    node.className = "job";
    node.dataset.jobId = job.jobId;
    node.dataset.status = job.status;
    node.dataset.type = job.type;
    const headingId = `job-${job.jobId}-title`;
    node.setAttribute("aria-labelledby", headingId);

    const head = document.createElement("div");
    head.className = "job-head";
    const heading = document.createElement("h3");
    heading.id = headingId;
    heading.textContent = `${title} job`;
    const badge = document.createElement("span");
    badge.className = "badge status";
    badge.dataset.status = job.status;
    badge.textContent = STATUS_TEXT[job.status] || job.status;
    const when = document.createElement("time");
    when.dateTime = job.createdAt;
    when.textContent = new Date(job.createdAt).toLocaleString();
    head.append(heading, badge, when);

    const parts = [head];
    if (entry.summary) {
      const summary = document.createElement("p");
      summary.className = "job-summary";
      summary.textContent = entry.summary;
      parts.push(summary);
    }
    const id = document.createElement("p");
    id.className = "job-id mono";
    id.textContent = job.jobId;
    parts.push(id);
    if (job.runAt && job.status === "PENDING" && new Date(job.runAt) > new Date()) {
      const runAt = document.createElement("p");
      runAt.className = "job-run-at";
      runAt.textContent = `Scheduled for ${new Date(job.runAt).toLocaleString()}`;
      parts.push(runAt);
    }
    if (job.priority && job.priority !== "normal") {
      const priority = document.createElement("span");
      priority.className = "priority";
      priority.dataset.priority = job.priority;
      priority.textContent = `${job.priority} priority`;
      head.insertBefore(priority, when);
    }
    if (Array.isArray(job.waitingFor) && job.waitingFor.length && job.status === "WAITING") {
      const waiting = document.createElement("p");
      waiting.className = "job-waiting";
      waiting.textContent = `Waiting for ${job.waitingFor.join(", ")}`;
      parts.push(waiting);
    }

    const row = document.createElement("div");
    row.className = "progress-row";
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = job.progress ?? 0;
    bar.setAttribute("aria-label", `Progress of ${title.toLowerCase()} job`);
    const percent = document.createElement("span");
    percent.className = "percent";
    percent.textContent = `${job.progress ?? 0}%`;
    row.append(bar, percent);
    parts.push(row);

    if (job.status === "FAILED" || job.error) {
      const error = document.createElement("p");
      error.className = "job-error";
      error.textContent = job.error || "failed";
      parts.push(error);
    }
    if (job.status === "COMPLETED" || resultUrls(job).length) {
      parts.push(renderResults(job, this.hooks.actions));
    }
    if (this.hooks.cancelEnabled && CANCELLABLE.has(job.status)) {
      const actions = document.createElement("div");
      actions.className = "job-actions";
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.className = "danger";
      cancel.textContent = "Cancel";
      cancel.setAttribute("aria-label", `Cancel ${title.toLowerCase()} job ${job.jobId}`);
      cancel.addEventListener("click", () => this.cancel(job.jobId, cancel));
      actions.append(cancel);
      parts.push(actions);
    }
    // Re-rendering keeps a playing video and a loaded image: replace only what changed.
    const oldResults = node.querySelector(".result-grid");
    const newResults = parts.find((part) => part.classList?.contains("result-grid"));
    if (oldResults && newResults && oldResults.dataset.urls === resultUrls(job).join(" ")) {
      parts[parts.indexOf(newResults)] = oldResults;
    } else if (newResults) {
      newResults.dataset.urls = resultUrls(job).join(" ");
    }
    const focused = node.contains(document.activeElement) ? document.activeElement.getAttribute("aria-label") : null;
    node.replaceChildren(...parts);
    if (focused) {
      const again = [...node.querySelectorAll("button")].find((b) => b.getAttribute("aria-label") === focused);
      again?.focus();
    }
  }

  async cancel(jobId, button) {
    button.disabled = true;
    try {
      const job = await api.cancel(jobId);
      if (job?.jobId) this.apply(job);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      button.disabled = false;
      this.hooks.notify(`Cancel refused: ${error.message}`);
    }
  }
}
