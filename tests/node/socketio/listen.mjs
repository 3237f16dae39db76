// A socket.io-client v4 as a frontend uses it, driven by a test through stdin/stdout.
//
// env: URL, TOKENS (JSON list; the auth callback hands them out in order, repeating the last,
// so a reconnect after expiry picks up a fresh token), TOKEN_IN_QUERY=1 (older clients: the
// token in the query string instead of the auth payload).
// stdout: one JSON object per line: connect, connect_error, disconnect, jobUpdate, ack.
// stdin: one JSON command per line: {cmd: "subscribe"|"unsubscribe", jobId} or {cmd: "close"}.
import { io } from "socket.io-client";
import readline from "node:readline";

const out = (event) => process.stdout.write(JSON.stringify(event) + "\n");
const url = process.env.URL;
const tokens = JSON.parse(process.env.TOKENS || "[]");
let handedOut = 0;
let lastTokenIndex = -1;

const options = { reconnectionDelay: 100, reconnectionDelayMax: 500, timeout: 5000 };
if (process.env.TOKEN_IN_QUERY === "1") {
  options.query = { token: tokens[0] };
} else {
  options.auth = (cb) => {
    lastTokenIndex = Math.min(handedOut, tokens.length - 1);
    handedOut += 1;
    cb(lastTokenIndex >= 0 ? { token: tokens[lastTokenIndex] } : {});
  };
}

const socket = io(url, options);
socket.on("connect", () => out({ event: "connect", id: socket.id, tokenIndex: lastTokenIndex }));
socket.on("connect_error", (err) =>
  out({ event: "connect_error", message: err.message, data: err.data ?? null }),
);
socket.on("disconnect", (reason) => out({ event: "disconnect", reason }));
socket.on("jobUpdate", (update) => out({ event: "jobUpdate", data: update }));

const commands = readline.createInterface({ input: process.stdin });
commands.on("line", (line) => {
  const command = JSON.parse(line);
  if (command.cmd === "close") {
    socket.close();
    process.exit(0);
  }
  socket.timeout(5000).emit(command.cmd, command.jobId, (err, ack) =>
    out({ event: "ack", cmd: command.cmd, jobId: command.jobId, error: err ? String(err) : null, data: ack ?? null }),
  );
});
commands.on("close", () => process.exit(0));
