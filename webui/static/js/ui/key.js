// The API-key form, used by Settings and by the prompt shown after a 401.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { apiKey, saveKey } from "../api.js";

export function KeyForm({ idPrefix = "settings", onSaved }) {
  const [value, setValue] = useState(apiKey.value);
  const [saved, setSaved] = useState(false);
  const onSubmit = (event) => {
    event.preventDefault();
    saveKey(value);
    setSaved(true);
    if (onSaved) onSaved();
  };
  const id = `${idPrefix}-api-key`;
  return html`<form class="key-form" onSubmit=${onSubmit}>
    <label for=${id}>API key</label>
    <div class="row">
      <input id=${id} type="password" autocomplete="off" spellcheck=${false} value=${value}
        placeholder="leave empty when the server has none"
        onInput=${(e) => { setValue(e.currentTarget.value); setSaved(false); }} />
      <button type="submit" class="primary">Save key</button>
    </div>
    ${saved ? html`<p class="muted" role="status">${value.trim() ? "Key saved in this browser." : "Key removed."}</p>` : null}
  </form>`;
}
