// A confirmation dialog for destructive actions (delete, drop): says what will happen, runs the
// action on "confirm", shows its error in place and keeps the dialog open until it succeeds.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { isAbort } from "../api.js";
import { ErrorMessage } from "./errors.js";
import { Dialog } from "./widgets.js";

/**
 * <Confirm title="Delete …?" action="Delete" onConfirm=${async () => …} onClose=${…}>what happens</Confirm>
 * `onConfirm` may be async; the dialog closes when it resolves and shows the error when it throws.
 */
export function Confirm({ title, action = "Delete", onConfirm, onClose, children }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      onClose();
    } catch (err) {
      if (!isAbort(err)) setError(err);
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${title} onClose=${onClose}>
    ${children}
    <${ErrorMessage} error=${error} context=${`Could not ${action.toLowerCase()}`} />
    <div class="row confirm-actions">
      <button type="button" class="danger" onClick=${confirm} disabled=${busy}>${busy ? `${action}…` : action}</button>
      <button type="button" onClick=${onClose}>Cancel</button>
    </div>
  </${Dialog}>`;
}
