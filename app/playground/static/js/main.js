// The playground: sign in, see your credits, create jobs, watch them arrive.
// The token lives in sessionStorage (this tab only); everything else comes from the API.

import { ApiError, api, onUnauthorized, setToken } from "./api.js";
import { buildForms, prefill } from "./forms.js";
import { JobList, isFinished } from "./jobs.js";
import { LiveUpdates } from "./live.js";
import { setUpDialogs } from "./results.js";

const TOKEN_KEY = "daygen.playground.token";
const $ = (id) => document.getElementById(id);

let config = null;
let jobs = null;
let live = null;
let creditsPending = null;
let creditsAgain = false;

function notify(text) {
  const notice = $("notice");
  notice.textContent = text;
  notice.hidden = false;
}

function setConnection(state, text, reason) {
  const node = $("connection");
  node.dataset.state = state;
  $("connection-text").textContent = text;
  if (reason) node.title = reason;
  else node.removeAttribute("title");
}

/**
 * Credits change when a job is created, fails (refund) or is cancelled: read them again. One
 * read at a time; a change noticed while one is in flight (it may have read the balance before
 * that change) gets one more read after it.
 */
function refreshCredits() {
  if (creditsPending) {
    creditsAgain = true;
    return creditsPending;
  }
  creditsPending = (async () => {
    try {
      do {
        creditsAgain = false;
        try {
          const me = await api.me();
          $("credits-value").textContent = String(me.credits);
          $("credits").dataset.credits = String(me.credits);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
        }
      } while (creditsAgain);
    } finally {
      creditsPending = null;
    }
  })();
  return creditsPending;
}

/** Every unfinished job shown, read again (a stale answer is dropped by its updatedAt). */
async function resync() {
  await Promise.all(
    jobs.unfinished().map(async (job) => {
      try {
        jobs.apply(await api.job(job.jobId));
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
      }
    }),
  );
}

function showSignedIn(userId, signedIn) {
  $("sign-in").hidden = signedIn;
  for (const id of ["create", "jobs", "credits", "connection", "who", "sign-out"]) $(id).hidden = !signedIn;
  $("who-name").textContent = userId || "";
}

function showSignIn() {
  showSignedIn(null, false);
  const development = config.signIn === "development";
  $("dev-sign-in").hidden = !development;
  $("token-sign-in").hidden = development;
  (development ? $("dev-user") : $("token-input")).focus();
}

async function signIn(token) {
  setToken(token);
  const me = await api.me(); // throws on a bad token
  sessionStorage.setItem(TOKEN_KEY, token);
  showSignedIn(me.id, true);
  $("credits-value").textContent = String(me.credits);
  $("credits").dataset.credits = String(me.credits);
  document.body.dataset.user = me.id;
  live.stop();
  await jobs.reload();
  live.start();
  return me;
}

function signOut(message) {
  live.stop();
  jobs.clear();
  setToken(null);
  sessionStorage.removeItem(TOKEN_KEY);
  delete document.body.dataset.user;
  showSignIn();
  if (message) notify(message);
}

function fieldError(id, text) {
  const node = $(id);
  node.textContent = text || "";
  node.hidden = !text;
}

function setUpSignIn() {
  $("dev-sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("dev-user");
    fieldError("dev-user-error", "");
    input.removeAttribute("aria-invalid");
    try {
      const { token } = await api.devToken(input.value.trim());
      await signIn(token);
      notify(`Signed in as ${input.value.trim()}.`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const problem = error.fields.find((item) => item.field === "userId");
      fieldError("dev-user-error", problem ? problem.message : error.message);
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  });
  $("token-sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("token-input");
    fieldError("token-error", "");
    input.removeAttribute("aria-invalid");
    const token = input.value.trim().replace(/^Bearer\s+/i, "");
    try {
      const me = await signIn(token);
      input.value = "";
      notify(`Signed in as ${me.id}.`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      setToken(null);
      fieldError("token-error", error.message);
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  });
  $("sign-out").addEventListener("click", () => signOut("Signed out."));
  onUnauthorized((error) => {
    if (document.body.dataset.user) signOut(`Signed out: ${error.message}. Sign in again.`);
  });
}

async function boot() {
  config = await api.config();
  if (config.consolePath) {
    $("console-link").href = config.consolePath;
    $("console-link").hidden = false;
  }
  const openPicker = setUpDialogs(() => jobs.imageResults());
  jobs = new JobList({
    cancelEnabled: Boolean(config.cancel),
    notify,
    actions: {
      upscale: (url) => prefill("image-upscale", "imageUrl", url),
      animate: (url) => prefill("video-generation", "imageUrls", url),
    },
    onStatusChange: () => refreshCredits(),
    onNewJob: (job, { listed }) => {
      if (!isFinished(job)) live?.follow(job);
      if (!listed) refreshCredits(); // made elsewhere (another tab, curl): it was charged
    },
  });
  live = new LiveUpdates({
    onUpdate: (job) => jobs.apply(job),
    onConnect: () => resync(),
    onState: setConnection,
    onUnauthorized: () => {
      if (document.body.dataset.user) signOut("Signed out: the token is no longer valid. Sign in again.");
    },
    unfinished: () => jobs.unfinished(),
  });
  buildForms(config, {
    onCreated: (job, summary, title) => {
      // Its jobUpdate may have come first (a fast job): then that is the news, not this.
      if (!jobs.has(job.jobId)) notify(`${title} job created: ${job.jobId}`);
      jobs.created(job, summary);
      refreshCredits();
    },
    openPicker,
  });
  $("refresh-jobs").addEventListener("click", () => jobs.reload());
  setUpSignIn();
  const saved = sessionStorage.getItem(TOKEN_KEY);
  let signedIn = false;
  if (saved) {
    try {
      await signIn(saved);
      signedIn = true;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      sessionStorage.removeItem(TOKEN_KEY);
    }
  }
  if (!signedIn) showSignIn();
  document.body.dataset.ready = "true";
}

boot();
