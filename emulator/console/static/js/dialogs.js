// Modal dialogs: the confirmation every destructive action asks for, and the queue editor
// (UpdateQueue with a field mask naming only what changed). Native <dialog>: focus moves in,
// stays in, Escape cancels, and focus returns to the button that opened it.

import { api, ApiError, shortId } from "./api.js";
import { seconds } from "./format.js";

function returnFocus(dialog, opener) {
  dialog.addEventListener("close", () => {
    if (opener && opener.isConnected) opener.focus();
  }, { once: true });
}

/** Resolves true when the user confirms; the safe choice (Cancel) has the focus. */
export function confirmAction({ title, message, confirmLabel }) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-message").textContent = message;
  document.getElementById("confirm-ok").textContent = confirmLabel;
  returnFocus(dialog, document.activeElement);
  dialog.returnValue = "";
  dialog.showModal();
  document.getElementById("confirm-cancel").focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
  });
}

// The editable fields: form input name -> [group, field, kind].
const FIELDS = {
  maxDispatchesPerSecond: ["rateLimits", "maxDispatchesPerSecond", "number"],
  maxConcurrentDispatches: ["rateLimits", "maxConcurrentDispatches", "integer"],
  maxAttempts: ["retryConfig", "maxAttempts", "integer"],
  maxRetryDuration: ["retryConfig", "maxRetryDuration", "duration"],
  minBackoff: ["retryConfig", "minBackoff", "duration"],
  maxBackoff: ["retryConfig", "maxBackoff", "duration"],
  maxDoublings: ["retryConfig", "maxDoublings", "integer"],
};

/** The queue's current value of a field as the form shows it (proto3 JSON leaves zeros out). */
function current(queue, [group, field, kind]) {
  const value = queue[group]?.[field];
  return kind === "duration" ? seconds(value) : Number(value ?? 0);
}

function labelOf(input) {
  return input.labels[0].firstChild.textContent.trim();
}

/**
 * Opens the editor for ``queue``; resolves the updated queue, or null when cancelled.
 * Values are checked to be numbers here; their limits are the API's to judge, and its
 * message is shown as it comes.
 */
export function editQueue(queue) {
  const dialog = document.getElementById("edit-queue");
  const form = document.getElementById("edit-form");
  const error = document.getElementById("edit-error");
  document.getElementById("edit-queue-name").textContent = shortId(queue.name);
  for (const [name, spec] of Object.entries(FIELDS)) form.elements[name].value = String(current(queue, spec));
  error.hidden = true;
  returnFocus(dialog, document.activeElement);
  dialog.showModal();
  form.elements.maxDispatchesPerSecond.focus();

  return new Promise((resolve) => {
    let result = null;
    const showError = (message) => {
      error.textContent = message;
      error.hidden = false;
    };
    const submit = async (event) => {
      event.preventDefault();
      const body = { name: queue.name, rateLimits: {}, retryConfig: {} };
      const paths = [];
      for (const [name, spec] of Object.entries(FIELDS)) {
        const input = form.elements[name];
        const value = Number(input.value);
        if (input.value.trim() === "" || !Number.isFinite(value)) {
          showError(`${labelOf(input)}: a number is required.`);
          input.focus();
          return;
        }
        if (spec[2] === "integer" && !Number.isInteger(value)) {
          showError(`${labelOf(input)}: a whole number is required.`);
          input.focus();
          return;
        }
        if (value === current(queue, spec)) continue;
        const [group, field, kind] = spec;
        body[group][field] = kind === "duration" ? `${value}s` : value;
        paths.push(`${group}.${field}`);
      }
      if (paths.length === 0) {
        dialog.close();
        return;
      }
      const save = document.getElementById("edit-save");
      save.disabled = true;
      try {
        result = await api.updateQueue(body, paths);
        dialog.close();
      } catch (failure) {
        showError(failure instanceof ApiError ? failure.message : String(failure));
      } finally {
        save.disabled = false;
      }
    };
    const cancel = () => dialog.close();
    const cancelButton = document.getElementById("edit-cancel");
    form.addEventListener("submit", submit);
    cancelButton.addEventListener("click", cancel);
    dialog.addEventListener("close", () => {
      form.removeEventListener("submit", submit);
      cancelButton.removeEventListener("click", cancel);
      resolve(result);
    }, { once: true });
  });
}
