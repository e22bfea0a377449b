// Sound generation: a sound model, a description, a duration and a seed -> POST /v1/sound-generation
// (LocalAI's ElevenLabs-style body) -> a WAV clip to play and download.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { isAbort } from "../api.js";
import { ErrorMessage } from "../ui/errors.js";
import { ModelSelect, useModelChoice } from "../ui/model-select.js";
import { Clips, clipList, fetchClip } from "./clips.js";

const sounds = clipList();

export function SoundPanel() {
  const [models, model, setModel] = useModelChoice("sound");
  const [text, setText] = useState("");
  const [duration, setDuration] = useState("");
  const [seed, setSeed] = useState("");
  const [running, setRunning] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => () => running && running.abort(), [running]);

  const generate = async (event) => {
    event.preventDefault();
    if (running || !model || !text.trim()) return;
    const controller = new AbortController();
    setRunning(controller);
    setError(null);
    const body = { model_id: model, text: text.trim() };
    if (duration !== "") body.duration_seconds = Number(duration);
    if (seed !== "") body.seed = Number(seed);
    try {
      await fetchClip(sounds, "/v1/sound-generation", body, {
        signal: controller.signal, label: body.text, stem: "sound",
        detail: `${model}${body.duration_seconds ? `, ${body.duration_seconds} s` : ""}${body.seed != null ? `, seed ${body.seed}` : ""}`,
      });
    } catch (err) {
      if (!isAbort(err)) setError(err);
    } finally {
      setRunning(null);
    }
  };

  return html`<section class="card" aria-labelledby="sound-heading">
    <h2 id="sound-heading">Sound generation</h2>
    <form class="media-form" onSubmit=${generate}>
      <div class="media-params">
        <${ModelSelect} id="sound-model" models=${models} value=${model} onChange=${setModel} what="sound-generation" />
        <div class="field">
          <label for="sound-duration">Seconds</label>
          <input id="sound-duration" type="number" min="0.5" max="30" step="0.5" value=${duration} placeholder="model's"
            onInput=${(e) => setDuration(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="sound-seed">Seed</label>
          <input id="sound-seed" type="number" min="0" step="1" value=${seed} placeholder="random"
            onInput=${(e) => setSeed(e.currentTarget.value)} />
        </div>
      </div>
      <div class="field">
        <label for="sound-text">Describe the sound</label>
        <input id="sound-text" type="text" required value=${text} placeholder="rain on a tin roof"
          onInput=${(e) => setText(e.currentTarget.value)} />
      </div>
      <div class="row">
        <button type="submit" class="primary" disabled=${!!running || !model}>Generate</button>
        ${running ? html`<button type="button" onClick=${() => running.abort()}>Cancel</button>
          <span role="status" class="muted">Generating…</span>` : null}
      </div>
      <${ErrorMessage} error=${error} context="Could not generate the sound" />
    </form>
    <${Clips} list=${sounds} heading="Generated sounds" empty="Generated sounds appear here, ready to play and download." />
  </section>`;
}
