// Images: a prompt with its size, steps, seed and negative prompt -> POST /v1/images/generations ->
// a gallery of the results, newest first, kept while this tab lives (the images are fetched with the
// key as blobs), each with a download link, its parameters and a way to reuse them.
import { html } from "htm/preact";
import { signal } from "@preact/signals";
import { useEffect, useState } from "preact/hooks";
import { blobURL, isAbort, postJSON } from "../api.js";
import { ErrorMessage, showError } from "../ui/errors.js";
import { ModelSelect, useModelChoice } from "../ui/model-select.js";
import { PageHeader, formatDate, formatNumber } from "../ui/widgets.js";

const SIZES = ["256x256", "512x512", "768x768", "1024x1024", "512x768", "768x512", "auto"];
const KEEP = 24; // results kept in the gallery; older ones are dropped and their blobs freed

/** The form as last left, so leaving the page and coming back keeps it. */
const draft = signal({ prompt: "", negative: "", size: "512x512", steps: "", seed: "", n: 1 });
/** The results of this tab, newest first: [{id, created, seconds, params, images: [{url, name}]}]. */
const gallery = signal([]);
let nextId = 1;

function addResult(entry) {
  const kept = [entry, ...gallery.value];
  for (const old of kept.slice(KEEP)) old.images.forEach((i) => URL.revokeObjectURL(i.url));
  gallery.value = kept.slice(0, KEEP);
}

function removeResult(id) {
  const entry = gallery.value.find((e) => e.id === id);
  if (entry) entry.images.forEach((i) => URL.revokeObjectURL(i.url));
  gallery.value = gallery.value.filter((e) => e.id !== id);
}

/** The appliance's own path for a generated image URL (it may name the host the server saw). */
function sameOrigin(url) {
  const parsed = new URL(url, location.href);
  return parsed.origin === location.origin ? parsed.href : parsed.pathname + parsed.search;
}

async function imageBlob(item, signal) {
  if (item.b64_json) {
    const bytes = Uint8Array.from(atob(item.b64_json), (c) => c.charCodeAt(0));
    return URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
  }
  return blobURL(sameOrigin(item.url), { signal });
}

function requestBody(model, form) {
  const body = { model, prompt: form.prompt.trim(), n: Number(form.n) || 1, response_format: "url" };
  if (form.size && form.size !== "auto") body.size = form.size;
  if (form.negative.trim()) body.negative_prompt = form.negative.trim();
  if (form.steps !== "") body.step = Number(form.steps);
  if (form.seed !== "") body.seed = Number(form.seed);
  return body;
}

/** The request in flight ({controller, started}) and the last failure: they outlive the page, so a
 * generation started before leaving it still lands in the gallery. */
const job = signal(null);
const failure = signal(null);

async function generate(model, form) {
  if (job.value || !model) return;
  const controller = new AbortController();
  const body = requestBody(model, form);
  const started = performance.now();
  job.value = { controller, started };
  failure.value = null;
  try {
    const answer = await postJSON("/v1/images/generations", body, { signal: controller.signal });
    const urls = await Promise.all(answer.data.map((item) => imageBlob(item, controller.signal)));
    const created = answer.created || Math.floor(Date.now() / 1000);
    addResult({
      id: nextId++,
      created,
      seconds: (performance.now() - started) / 1000,
      params: body,
      images: urls.map((url, i) => ({ url, name: `image-${created}-${i + 1}.png` })),
    });
  } catch (err) {
    if (!isAbort(err)) failure.value = err;
  } finally {
    job.value = null;
  }
}

function useElapsed(started) {
  const [seconds, setSeconds] = useState(0);
  useEffect(() => {
    if (started == null) return undefined;
    const tick = () => setSeconds((performance.now() - started) / 1000);
    tick();
    const timer = setInterval(tick, 250);
    return () => clearInterval(timer);
  }, [started]);
  return seconds;
}

function GenerateForm() {
  const [models, model, setModel] = useModelChoice("image");
  const form = draft.value;
  const set = (patch) => { draft.value = { ...draft.value, ...patch }; };
  const running = job.value;
  const elapsed = useElapsed(running ? running.started : null);
  const submit = (event) => {
    event.preventDefault();
    generate(model, draft.value).catch((err) => showError(err, "Could not generate the image"));
  };
  const onKeyDown = (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !e.isComposing) submit(e);
  };

  return html`<form class="card media-form" onSubmit=${submit} aria-labelledby="images-form-heading">
    <h2 id="images-form-heading" class="visually-hidden">New image</h2>
    <${ModelSelect} id="image-model" models=${models} value=${model} onChange=${setModel} what="image" />
    <div class="field">
      <label for="image-prompt">Prompt</label>
      <textarea id="image-prompt" rows="3" required value=${form.prompt} onKeyDown=${onKeyDown}
        placeholder="A lighthouse on a cliff at dusk, oil painting" aria-describedby="image-prompt-hint"
        onInput=${(e) => set({ prompt: e.currentTarget.value })}></textarea>
      <p class="muted hint" id="image-prompt-hint">Ctrl+Enter generates.</p>
    </div>
    <div class="field">
      <label for="image-negative">Negative prompt <span class="muted">(optional)</span></label>
      <input id="image-negative" type="text" value=${form.negative} placeholder="blurry, text"
        onInput=${(e) => set({ negative: e.currentTarget.value })} />
    </div>
    <div class="images-params">
      <div class="field">
        <label for="image-size">Size</label>
        <select id="image-size" value=${form.size} onChange=${(e) => set({ size: e.currentTarget.value })}>
          ${SIZES.map((s) => html`<option key=${s} value=${s}>${s === "auto" ? "the model's own" : s.replace("x", " × ")}</option>`)}
        </select>
      </div>
      <div class="field">
        <label for="image-steps">Steps</label>
        <input id="image-steps" type="number" min="1" max="500" step="1" value=${form.steps} placeholder="model's"
          onInput=${(e) => set({ steps: e.currentTarget.value })} />
      </div>
      <div class="field">
        <label for="image-seed">Seed</label>
        <input id="image-seed" type="number" min="0" step="1" value=${form.seed} placeholder="random"
          onInput=${(e) => set({ seed: e.currentTarget.value })} />
      </div>
      <div class="field">
        <label for="image-n">Images</label>
        <input id="image-n" type="number" min="1" max="4" step="1" value=${form.n}
          onInput=${(e) => set({ n: e.currentTarget.value })} />
      </div>
    </div>
    <div class="row">
      <button type="submit" class="primary" disabled=${!!running || !model}>Generate</button>
      ${running ? html`<button type="button" onClick=${() => running.controller.abort()}>Cancel</button>
        <span role="status" class="muted">Generating… ${formatNumber(elapsed, 1)} s</span>` : null}
    </div>
    <${ErrorMessage} error=${failure.value} context="Could not generate the image" />
  </form>`;
}

function reuse(params) {
  draft.value = {
    prompt: params.prompt,
    negative: params.negative_prompt || "",
    size: params.size || "auto",
    steps: params.step ?? "",
    seed: params.seed ?? "",
    n: params.n || 1,
  };
  const prompt = document.getElementById("image-prompt");
  if (prompt) { prompt.focus(); prompt.scrollIntoView({ block: "center" }); }
}

function Result({ entry }) {
  const p = entry.params;
  return html`<li class="card image-result">
    <figure>
      <div class="image-frames">
        ${entry.images.map((image, i) => html`<div class="image-frame" key=${image.url}>
          <img src=${image.url} alt=${`${p.prompt}${entry.images.length > 1 ? ` (${i + 1} of ${entry.images.length})` : ""}`} />
          <a class="download-link" href=${image.url} download=${image.name}>Download${entry.images.length > 1 ? ` ${i + 1}` : ""}</a>
        </div>`)}
      </div>
      <figcaption>
        <p class="image-prompt">${p.prompt}</p>
        <dl class="image-params">
          <div><dt>Model</dt><dd>${p.model}</dd></div>
          <div><dt>Size</dt><dd>${p.size || "model's own"}</dd></div>
          <div><dt>Steps</dt><dd>${p.step ?? "model's"}</dd></div>
          <div><dt>Seed</dt><dd>${p.seed ?? "random"}</dd></div>
          ${p.negative_prompt ? html`<div><dt>Negative</dt><dd>${p.negative_prompt}</dd></div>` : null}
          <div><dt>Took</dt><dd>${formatNumber(entry.seconds, 1)} s</dd></div>
        </dl>
        <p class="muted">${formatDate(entry.created)}</p>
      </figcaption>
    </figure>
    <div class="row">
      <button type="button" class="small" onClick=${() => reuse(p)}>Use these settings</button>
      <button type="button" class="small danger" onClick=${() => removeResult(entry.id)}>Remove</button>
    </div>
  </li>`;
}

export default function ImagesPage() {
  const results = gallery.value;
  return html`<${PageHeader} title="Images">
      ${results.length ? html`<button type="button" onClick=${() => results.forEach((e) => removeResult(e.id))}>Clear the gallery</button>` : null}
    </${PageHeader}>
    <${GenerateForm} />
    <section aria-labelledby="images-gallery-heading">
      <h2 id="images-gallery-heading">Gallery</h2>
      ${results.length
        ? html`<ul class="image-gallery">${results.map((e) => html`<${Result} key=${e.id} entry=${e} />`)}</ul>`
        : html`<p class="muted">Generated images appear here, newest first, until this tab is closed.</p>`}
    </section>`;
}
