// The seed frontend's flow with the real socket.io-client v4: connect with a token, create a
// job over HTTP, follow its jobUpdate events until it finishes.
//
// env: URL, TOKEN, JOB_TYPE (e.g. image-generation), BODY (JSON), TIMEOUT_MS.
// stdout: JSON lines: {event: "created", status, job}, then {event: "done", updates} with
// every jobUpdate of that job in arrival order (or {event: "timeout"|"connect_error", ...}).
import { io } from "socket.io-client";

const out = (event) => process.stdout.write(JSON.stringify(event) + "\n");
const { URL: url, TOKEN: token, JOB_TYPE: jobType, BODY: body } = process.env;
const FINISHED = new Set(["COMPLETED", "FAILED", "CANCELLED"]);

let jobId = null;
const early = []; // updates that arrive before the POST answers
const updates = [];

const socket = io(url, { auth: { token } });

function finish(event, code) {
  out(event);
  socket.close();
  process.exit(code);
}

function record(update) {
  if (update.jobId !== jobId) return;
  updates.push(update);
  if (FINISHED.has(update.status)) finish({ event: "done", updates }, 0);
}

socket.on("jobUpdate", (update) => (jobId === null ? early.push(update) : record(update)));
socket.on("connect_error", (err) =>
  finish({ event: "connect_error", message: err.message, data: err.data ?? null }, 2),
);
socket.once("connect", async () => {
  const response = await fetch(`${url}/api/jobs/${jobType}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body,
  });
  const job = await response.json();
  out({ event: "created", status: response.status, job });
  if (response.status !== 202) finish({ event: "rejected", job }, 4);
  jobId = job.jobId;
  early.splice(0).forEach(record);
});

setTimeout(
  () => finish({ event: "timeout", updates }, 3),
  Number(process.env.TIMEOUT_MS || 20000),
);
