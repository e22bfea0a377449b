// Speech to text: an audio file (chosen, or recorded from the microphone) and a transcription model
// -> POST /v1/audio/transcriptions (multipart, with upload progress) -> the text, newest first.
import { html } from "htm/preact";
import { signal } from "@preact/signals";
import { useEffect, useRef, useState } from "preact/hooks";
import { isAbort, upload } from "../api.js";
import { ErrorMessage } from "../ui/errors.js";
import { ModelSelect, useModelChoice } from "../ui/model-select.js";
import { CopyButton, formatBytes, formatNumber } from "../ui/widgets.js";
import { useRecorder } from "./recorder.js";

/** Transcripts of this tab, newest first: [{id, name, text, language, duration, model}]. */
const transcripts = signal([]);
let nextId = 1;
const KEEP = 20;

function Transcripts() {
  const list = transcripts.value;
  if (!list.length) return html`<p class="muted">The text appears here.</p>`;
  return html`<ul class="transcripts">
    ${list.map((t) => html`<li key=${t.id} class="transcript">
      <p class="transcript-source muted">${t.name} · ${t.model}${t.language ? ` · ${t.language}` : ""}${t.duration ? ` · ${formatNumber(t.duration, 1)} s` : ""}</p>
      <p class="transcript-text" data-testid="transcript">${t.text || html`<em class="muted">(no speech found)</em>`}</p>
      <div class="row">
        <${CopyButton} text=${t.text} label="Copy the text" />
        <button type="button" class="small danger" onClick=${() => { transcripts.value = transcripts.value.filter((x) => x.id !== t.id); }}>Remove</button>
      </div>
    </li>`)}
  </ul>`;
}

export function TranscribePanel() {
  const [models, model, setModel] = useModelChoice("transcription");
  const [file, setFile] = useState(null); // {file, recorded: seconds|null, preview: objectURL|null}
  const [language, setLanguage] = useState("");
  const [running, setRunning] = useState(null); // {controller, loaded, total}
  const [error, setError] = useState(null);
  const [micError, setMicError] = useState(null);
  const input = useRef(null);

  const preview = useRef(null); // the recording's object URL, freed when replaced or on leaving

  const choose = (chosen, recorded = null) => {
    if (preview.current) URL.revokeObjectURL(preview.current);
    preview.current = chosen && recorded != null ? URL.createObjectURL(chosen) : null;
    setFile(chosen ? { file: chosen, recorded, preview: preview.current } : null);
    setError(null);
  };
  useEffect(() => () => { if (preview.current) URL.revokeObjectURL(preview.current); }, []);
  useEffect(() => () => running && running.controller.abort(), [running && running.controller]);

  const recorder = useRecorder({
    onDone: (recording, seconds) => { if (input.current) input.current.value = ""; choose(recording, seconds); },
    onError: (message) => setMicError(message),
  });

  const transcribe = async (event) => {
    event.preventDefault();
    if (running || !model || !file) return;
    const controller = new AbortController();
    setRunning({ controller, loaded: 0, total: file.file.size });
    setError(null);
    const form = new FormData();
    form.append("model", model);
    form.append("response_format", "verbose_json");
    if (language.trim()) form.append("language", language.trim());
    form.append("file", file.file, file.file.name);
    try {
      const answer = await upload("/v1/audio/transcriptions", form, {
        signal: controller.signal,
        onProgress: ({ loaded, total }) => setRunning((r) => r && { ...r, loaded, total: total || r.total }),
      });
      const entry = { id: nextId++, name: file.file.name, text: (answer.text || "").trim(), language: answer.language,
        duration: answer.duration, model };
      transcripts.value = [entry, ...transcripts.value].slice(0, KEEP);
    } catch (err) {
      if (!isAbort(err)) setError(err);
    } finally {
      setRunning(null);
    }
  };

  const recording = recorder.state === "recording";
  const uploaded = running && running.total ? Math.min(100, (100 * running.loaded) / running.total) : 0;
  return html`<section class="card" aria-labelledby="stt-heading">
    <h2 id="stt-heading">Speech to text</h2>
    <form class="media-form" onSubmit=${transcribe}>
      <div class="media-params">
        <${ModelSelect} id="stt-model" models=${models} value=${model} onChange=${setModel} what="transcription" />
        <div class="field">
          <label for="stt-language">Language <span class="muted">(optional)</span></label>
          <input id="stt-language" type="text" value=${language} placeholder="detect" maxlength="16"
            onInput=${(e) => setLanguage(e.currentTarget.value)} />
        </div>
      </div>
      <div class="field">
        <label for="stt-file">Audio file</label>
        <input id="stt-file" type="file" ref=${input} accept="audio/*,video/*,.wav,.mp3,.ogg,.oga,.opus,.webm,.flac,.m4a,.aac"
          onChange=${(e) => choose(e.currentTarget.files[0] || null)} />
      </div>
      <div class="row">
        ${recording
          ? html`<button type="button" class="danger" onClick=${recorder.stop}>Stop recording</button>
            <span role="status" class="recording">Recording… ${formatNumber(recorder.seconds, 1)} s</span>`
          : html`<button type="button" onClick=${() => { setMicError(null); recorder.start(); }} disabled=${recorder.state === "starting" || !!running}>
              ${recorder.state === "starting" ? "Starting the microphone…" : "Record from the microphone"}</button>`}
      </div>
      ${micError ? html`<p class="error-inline" role="alert">${micError}</p>` : null}
      ${file ? html`<div class="stt-chosen">
        <p>To transcribe: <strong>${file.file.name}</strong> <span class="muted">(${formatBytes(file.file.size)}${file.recorded != null ? `, ${formatNumber(file.recorded, 1)} s recorded` : ""})</span></p>
        ${file.preview ? html`<audio controls src=${file.preview} aria-label="Play the recording"></audio>` : null}
      </div>` : null}
      <div class="row">
        <button type="submit" class="primary" disabled=${!!running || !model || !file || recording}>Transcribe</button>
        ${running ? html`<button type="button" onClick=${() => running.controller.abort()}>Cancel</button>
          ${uploaded < 100
            ? html`<progress max="100" value=${uploaded} aria-label="Upload"></progress><span role="status" class="muted">Uploading… ${formatNumber(uploaded)}%</span>`
            : html`<span role="status" class="muted">Transcribing…</span>`}` : null}
      </div>
      <${ErrorMessage} error=${error} context="Could not transcribe the audio" />
    </form>
    <${Transcripts} />
  </section>`;
}
