// Audio clips made in this tab (speech, sounds): kept newest first while the tab lives, each an
// object URL of the audio fetched with the key, shown with the player, a download link and what made it.
import { html } from "htm/preact";
import { signal } from "@preact/signals";
import { request } from "../api.js";
import { formatBytes, formatDate } from "../ui/widgets.js";

const KEEP = 20;
let nextId = 1;

/** A list of clips: {id, url, name, size, label, detail, created}. */
export function clipList() {
  return signal([]);
}

/** POST `json` to `path` and keep the audio it answers in `list`. Returns the new clip. */
export async function fetchClip(list, path, json, { signal, label, detail, stem }) {
  const response = await request(path, { json, signal });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const created = Math.floor(Date.now() / 1000);
  const ext = extension(blob.type);
  const clip = { id: nextId++, url, size: blob.size, name: `${stem}-${created}.${ext}`, label, detail, created };
  const kept = [clip, ...list.value];
  kept.slice(KEEP).forEach((c) => URL.revokeObjectURL(c.url));
  list.value = kept.slice(0, KEEP);
  return clip;
}

export function removeClip(list, id) {
  const clip = list.value.find((c) => c.id === id);
  if (clip) URL.revokeObjectURL(clip.url);
  list.value = list.value.filter((c) => c.id !== id);
}

function extension(type) {
  const kind = (type || "").split(";")[0].trim();
  return { "audio/wav": "wav", "audio/x-wav": "wav", "audio/mpeg": "mp3", "audio/ogg": "ogg", "audio/aac": "aac",
    "audio/flac": "flac", "audio/webm": "webm" }[kind] || "bin";
}

/** The clips of one panel, newest first. */
export function Clips({ list, empty, heading }) {
  const clips = list.value;
  if (!clips.length) return html`<p class="muted">${empty}</p>`;
  return html`<h3 class="visually-hidden">${heading}</h3>
    <ul class="audio-clips">
      ${clips.map((c) => html`<li key=${c.id} class="audio-clip">
        <p class="audio-clip-label">${c.label}</p>
        <audio controls preload="metadata" src=${c.url} aria-label=${`Play: ${c.label}`}></audio>
        <div class="row">
          <a class="download-link" href=${c.url} download=${c.name}>Download</a>
          <span class="muted">${c.detail} · ${formatBytes(c.size)} · ${formatDate(c.created)}</span>
          <button type="button" class="small danger" onClick=${() => removeClip(list, c.id)}
            aria-label=${`Remove the clip: ${c.label}`}>Remove</button>
        </div>
      </li>`)}
    </ul>`;
}
