// A model picker for one use case (image, tts, transcription, sound…): the models /v1/models
// offers for it, the choice kept in this browser per use case, and a readable hint when none exists.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { getJSON } from "../api.js";
import { ErrorMessage } from "./errors.js";
import { useResource } from "./widgets.js";

const STORAGE = "appliance.model.";

/** The ids of the models serving `usecase` (a resource: {data, error, loading, reload}). */
export function useModels(usecase) {
  return useResource(async (signal) => {
    const list = await getJSON("/v1/models", { signal });
    return list.data.filter((m) => (m.usecases || []).includes(usecase)).map((m) => m.id);
  }, [usecase]);
}

function remembered(usecase) {
  try { return localStorage.getItem(STORAGE + usecase) || ""; } catch { return ""; }
}

/**
 * [models, model, setModel]: the resource and the chosen id, which defaults to the last one picked
 * for this use case (when still offered), else the first model offered.
 */
export function useModelChoice(usecase) {
  const models = useModels(usecase);
  const [model, setModelState] = useState(() => remembered(usecase));
  const ids = models.data || [];
  useEffect(() => {
    // From the latest state: a choice made while the list was arriving is kept, not reset.
    if (ids.length) setModelState((current) => (ids.includes(current) ? current : ids[0]));
  }, [ids.join("\n")]);
  const setModel = (id) => {
    setModelState(id);
    try { localStorage.setItem(STORAGE + usecase, id); } catch { /* private mode: not kept */ }
  };
  return [models, ids.includes(model) ? model : "", setModel];
}

/** <label> + <select> of the models for a use case; `what` names them ("image", "voice"…). */
export function ModelSelect({ id, models, value, onChange, what, label = "Model" }) {
  if (models.error) return html`<${ErrorMessage} error=${models.error} context="Could not list the models" />`;
  const ids = models.data || [];
  const none = models.data && !ids.length;
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <select id=${id} value=${value} onChange=${(e) => onChange(e.currentTarget.value)} disabled=${!ids.length}
      aria-describedby=${none ? `${id}-none` : undefined}>
      ${!ids.length ? html`<option value="">${models.data ? `No ${what} model` : "Loading models…"}</option>` : null}
      ${ids.map((m) => html`<option key=${m} value=${m}>${m}</option>`)}
    </select>
    ${none ? html`<p class="muted hint" id=${`${id}-none`}>This server offers no ${what} model: install one on the
      <a href="#/models">Models</a> page or add its YAML to the models path.</p>` : null}
  </div>`;
}
