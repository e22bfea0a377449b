// Text to speech: a voice model, an optional voice name, a format and the text -> POST
// /v1/audio/speech -> a clip to play and download.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { isAbort } from "../api.js";
import { ErrorMessage } from "../ui/errors.js";
import { ModelSelect, useModelChoice } from "../ui/model-select.js";
import { Clips, clipList, fetchClip } from "./clips.js";

const FORMATS = [
  ["wav", "WAV"], ["mp3", "MP3"], ["opus", "Opus (Ogg)"], ["flac", "FLAC"], ["aac", "AAC"],
];
const spoken = clipList();

export function SpeechPanel() {
  const [models, model, setModel] = useModelChoice("tts");
  const [text, setText] = useState("");
  const [voice, setVoice] = useState("");
  const [format, setFormat] = useState("wav");
  const [speed, setSpeed] = useState("1");
  const [running, setRunning] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => () => running && running.abort(), [running]);

  const speak = async (event) => {
    event.preventDefault();
    if (running || !model || !text.trim()) return;
    const controller = new AbortController();
    setRunning(controller);
    setError(null);
    const body = { model, input: text, response_format: format, speed: Number(speed) || 1 };
    if (voice.trim()) body.voice = voice.trim();
    try {
      const excerpt = text.length > 80 ? `${text.slice(0, 80)}…` : text;
      await fetchClip(spoken, "/v1/audio/speech", body, {
        signal: controller.signal, label: excerpt, stem: "speech",
        detail: `${model}${body.voice ? ` (${body.voice})` : ""}, ${format}`,
      });
    } catch (err) {
      if (!isAbort(err)) setError(err);
    } finally {
      setRunning(null);
    }
  };

  return html`<section class="card" aria-labelledby="tts-heading">
    <h2 id="tts-heading">Text to speech</h2>
    <form class="media-form" onSubmit=${speak}>
      <div class="media-params">
        <${ModelSelect} id="tts-model" models=${models} value=${model} onChange=${setModel} what="text-to-speech" label="Voice model" />
        <div class="field">
          <label for="tts-voice">Voice <span class="muted">(optional)</span></label>
          <input id="tts-voice" type="text" value=${voice} placeholder="default"
            onInput=${(e) => setVoice(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="tts-format">Format</label>
          <select id="tts-format" value=${format} onChange=${(e) => setFormat(e.currentTarget.value)}>
            ${FORMATS.map(([value, label]) => html`<option key=${value} value=${value}>${label}</option>`)}
          </select>
        </div>
        <div class="field">
          <label for="tts-speed">Speed</label>
          <input id="tts-speed" type="number" min="0.25" max="4" step="0.05" value=${speed}
            onInput=${(e) => setSpeed(e.currentTarget.value)} />
        </div>
      </div>
      <div class="field">
        <label for="tts-text">Text</label>
        <textarea id="tts-text" rows="3" required value=${text} onInput=${(e) => setText(e.currentTarget.value)}></textarea>
      </div>
      <div class="row">
        <button type="submit" class="primary" disabled=${!!running || !model}>Speak</button>
        ${running ? html`<button type="button" onClick=${() => running.abort()}>Cancel</button>
          <span role="status" class="muted">Speaking…</span>` : null}
      </div>
      <${ErrorMessage} error=${error} context="Could not speak the text" />
    </form>
    <${Clips} list=${spoken} heading="Spoken clips" empty="The speech appears here, ready to play and download." />
  </section>`;
}
