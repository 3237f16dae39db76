// Live job updates: the real socket.io-client (vendor/socket.io.min.js, `window.io`) joined to
// the user's room, which also sends the state of every unfinished job on connect. When the
// client is missing or the socket cannot connect, each unfinished job is followed over its SSE
// endpoint instead (fetch, since EventSource cannot send the Authorization header).

import { currentToken } from "./api.js";

const SOCKET_FAILURES_BEFORE_SSE = 3;
const SSE_RETRY_MS = 1000;

export class LiveUpdates {
  /** `hooks`: {onUpdate(job), onState(state, text), onConnect(), onUnauthorized(), unfinished()}. */
  constructor(hooks) {
    this.hooks = hooks;
    this.socket = null;
    this.mode = "off";
    this.failures = 0;
    this.streams = new Map(); // jobId -> AbortController
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    if (typeof window.io !== "function") {
      this.useSse("the Socket.IO client did not load");
      return;
    }
    this.mode = "socket";
    this.hooks.onState("connecting", "Connecting…");
    this.socket = window.io({
      path: "/socket.io/",
      auth: (send) => send({ token: currentToken() }),
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
    });
    this.socket.on("connect", () => {
      this.failures = 0;
      this.hooks.onState("live", "Live");
      // What changed before the socket joined the user's room (while the list loaded, or
      // while disconnected) was sent to nobody; the server's snapshot on connect covers the
      // unfinished jobs only, so a job that finished in that gap is read again.
      this.hooks.onConnect?.();
    });
    this.socket.on("disconnect", () => {
      if (this.mode === "socket" && !this.stopped) this.hooks.onState("connecting", "Reconnecting…");
    });
    this.socket.on("connect_error", (error) => {
      if (error?.message === "unauthorized") {
        this.hooks.onUnauthorized();
        return;
      }
      this.failures += 1;
      if (this.failures >= SOCKET_FAILURES_BEFORE_SSE) this.useSse("Socket.IO cannot connect");
    });
    this.socket.on("jobUpdate", (job) => this.hooks.onUpdate(job));
  }

  stop() {
    this.stopped = true;
    this.socket?.close();
    this.socket = null;
    for (const controller of this.streams.values()) controller.abort();
    this.streams.clear();
    this.mode = "off";
    this.hooks.onState("off", "Offline");
  }

  /** A job this page just learnt of: over SSE it needs a stream; the socket's room has it. */
  follow(job) {
    if (this.mode === "sse") this.stream(job.jobId);
  }

  useSse(reason) {
    this.socket?.close();
    this.socket = null;
    this.mode = "sse";
    this.hooks.onState("live", "Live (server-sent events)", reason);
    for (const job of this.hooks.unfinished()) this.stream(job.jobId);
  }

  async stream(jobId) {
    if (this.streams.has(jobId) || this.stopped) return;
    const controller = new AbortController();
    this.streams.set(jobId, controller);
    let finished = false;
    try {
      const response = await fetch(`api/jobs/${encodeURIComponent(jobId)}/events`, {
        headers: { Authorization: `Bearer ${currentToken()}`, Accept: "text/event-stream" },
        signal: controller.signal,
      });
      if (response.status === 401) {
        this.hooks.onUnauthorized();
        return;
      }
      if (!response.ok || !response.body) return;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const update = parseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (update) {
            this.hooks.onUpdate(update);
            finished = ["COMPLETED", "FAILED", "CANCELLED"].includes(update.status);
          }
        }
      }
    } catch (error) {
      if (error.name === "AbortError") return;
    } finally {
      if (this.streams.get(jobId) === controller) this.streams.delete(jobId);
    }
    // The stream ends after the job's last update; ended early (a restart), follow it again.
    if (!finished && !this.stopped && this.mode === "sse") {
      setTimeout(() => this.stream(jobId), SSE_RETRY_MS);
    }
  }
}

/** A `jobUpdate` event's job, or null (a heartbeat comment, another event). */
export function parseEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (event !== "jobUpdate" || !data.length) return null;
  try {
    return JSON.parse(data.join("\n"));
  } catch {
    return null;
  }
}
