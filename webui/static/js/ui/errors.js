// Errors the user must see: a shared banner (role="alert") that lists every error reported with
// showError(), each with its message and a dismiss button, and an inline <ErrorMessage> for a panel.
import { html } from "htm/preact";
import { signal } from "@preact/signals";
import { isAbort } from "../api.js";

let nextId = 1;
/** The errors shown in the banner, oldest first: [{id, message, context}]. */
export const errors = signal([]);
const LIMIT = 5;

/** The text to show for any thrown value. */
export function messageOf(err) {
  if (err == null) return "Unknown error";
  if (typeof err === "string") return err;
  if (err.message) return err.message;
  return String(err);
}

/**
 * Show `err` in the banner (an aborted request is not an error and is ignored). `context` says what
 * was being done, e.g. "Could not load the models". Returns the entry's id.
 */
export function showError(err, context = "") {
  if (isAbort(err)) return null;
  const entry = { id: nextId++, message: messageOf(err), context };
  const kept = errors.value.filter((e) => !(e.message === entry.message && e.context === context));
  errors.value = [...kept, entry].slice(-LIMIT);
  return entry.id;
}

export function dismissError(id) {
  errors.value = errors.value.filter((e) => e.id !== id);
}

export function clearErrors() {
  errors.value = [];
}

export function ErrorBanner() {
  const list = errors.value;
  return html`<div class="error-banner" role="alert" aria-live="assertive">
    ${list.map((e) => html`<div class="error-item" key=${e.id}>
      <span class="error-text">${e.context ? html`<strong>${e.context}: </strong>` : null}${e.message}</span>
      <button type="button" class="icon-button" aria-label="Dismiss this error" onClick=${() => dismissError(e.id)}>×</button>
    </div>`)}
  </div>`;
}

/** An error shown inside a page or panel (null renders nothing). */
export function ErrorMessage({ error, context = "" }) {
  if (!error) return null;
  return html`<p class="error-inline" role="alert">${context ? `${context}: ` : ""}${messageOf(error)}</p>`;
}

/** Report what would otherwise only reach the console. */
export function catchUnhandled() {
  window.addEventListener("unhandledrejection", (event) => { showError(event.reason); });
  window.addEventListener("error", (event) => { showError(event.error || event.message); });
}
