// The chat's settings: model picker (chat-capable models from /v1/models), system prompt, sampling
// (temperature, top_p, max_tokens) and the documents toggle with the vector stores to answer from.
import { html } from "htm/preact";
import { getJSON } from "../api.js";
import { ErrorMessage } from "../ui/errors.js";
import { useResource } from "../ui/widgets.js";

export function useChatModels() {
  return useResource(async (signal) => {
    const list = await getJSON("/v1/models", { signal });
    return list.data.filter((m) => (m.usecases || []).includes("chat")).map((m) => m.id);
  });
}

export function ModelPicker({ models, value, onChange }) {
  if (models.error) return html`<${ErrorMessage} error=${models.error} context="Could not list the models" />`;
  const ids = models.data || [];
  return html`<label class="visually-hidden" for="chat-model">Model</label>
    <select id="chat-model" value=${value} onChange=${(e) => onChange(e.currentTarget.value)} disabled=${!ids.length}>
      ${!ids.length ? html`<option value="">${models.data ? "No chat model" : "Loading models…"}</option>` : null}
      ${value && ids.length && !ids.includes(value) ? html`<option value=${value}>${value} (not offered now)</option>` : null}
      ${ids.map((id) => html`<option key=${id} value=${id}>${id}</option>`)}
    </select>`;
}

function number(value, fallback) {
  const parsed = Number(value);
  return value === "" || Number.isNaN(parsed) ? fallback : parsed;
}

export function SamplingOptions({ options, onChange }) {
  const set = (patch) => onChange({ ...options, ...patch });
  return html`<div class="chat-options" id="chat-options">
    <div class="wide">
      <label for="chat-system">System prompt</label>
      <textarea id="chat-system" rows="2" value=${options.system} onInput=${(e) => set({ system: e.currentTarget.value })}></textarea>
    </div>
    <div>
      <label for="chat-temperature">Temperature</label>
      <input id="chat-temperature" type="number" min="0" max="2" step="0.1" value=${options.temperature}
        onInput=${(e) => set({ temperature: number(e.currentTarget.value, null) })} />
    </div>
    <div>
      <label for="chat-top-p">Top p</label>
      <input id="chat-top-p" type="number" min="0" max="1" step="0.05" value=${options.top_p}
        onInput=${(e) => set({ top_p: number(e.currentTarget.value, null) })} />
    </div>
    <div>
      <label for="chat-max-tokens">Max tokens</label>
      <input id="chat-max-tokens" type="number" min="1" step="1" value=${options.max_tokens}
        onInput=${(e) => set({ max_tokens: number(e.currentTarget.value, null) })} />
    </div>
  </div>`;
}

/** The vector stores to answer from (shown when the documents toggle is on). */
export function StorePicker({ options, onChange }) {
  const stores = useResource((signal) => getJSON("/v1/vector_stores?limit=100", { signal }));
  const chosen = new Set(options.vector_store_ids);
  const toggle = (id, on) => {
    const next = new Set(chosen);
    if (on) next.add(id); else next.delete(id);
    onChange({ ...options, vector_store_ids: [...next] });
  };
  if (stores.error) return html`<${ErrorMessage} error=${stores.error} context="Could not list the vector stores" />`;
  if (!stores.data) return html`<p class="muted" role="status">Loading vector stores…</p>`;
  if (!stores.data.data.length) {
    return html`<p class="muted">No vector store yet: create one and upload documents on the <a href="#/documents">Documents</a> page.</p>`;
  }
  return html`<fieldset class="store-picker">
    <legend>Answer from these vector stores</legend>
    ${stores.data.data.map((s) => html`<label class="inline" key=${s.id}>
      <input type="checkbox" checked=${chosen.has(s.id)} onChange=${(e) => toggle(s.id, e.currentTarget.checked)} />
      ${s.name || s.id} <span class="muted">(${s.file_counts ? s.file_counts.completed : 0} files)</span>
    </label>`)}
  </fieldset>`;
}
