// The gallery install panel of the Models page: the models the configured galleries offer
// (GET /models/available) with a filter, install (POST /models/apply) with progress from the job's
// event stream (GET /models/jobs/{uuid}/events; polling if the stream breaks), cancel
// (POST /models/jobs/{uuid}/cancel). Jobs outlive the page; a finished install bumps `installed`.
import { html } from "htm/preact";
import { signal } from "@preact/signals";
import { useEffect, useState } from "preact/hooks";
import { getJSON, isAbort, postJSON, request, sseEvents } from "../api.js";
import { showError } from "../ui/errors.js";
import { Loaded, formatBytes, formatNumber, useResource } from "../ui/widgets.js";

const SHOWN = 50; // gallery entries listed at once; the filter narrows the rest
const POLL_MS = 1000;
const FINAL = new Set(["completed", "failed", "cancelled"]);

/** Counts finished installs: pages listing models reload when it changes. */
export const installed = signal(0);
/** Jobs followed in this tab, newest first: [{uuid, id, job}] (job: the server's job object, or null). */
export const jobs = signal([]);

const isFinal = (job) => !!job && (FINAL.has(job.state) || (job.processed && !job.state));

function update(uuid, job) {
  const before = jobs.value.find((j) => j.uuid === uuid);
  jobs.value = jobs.value.map((j) => (j.uuid === uuid ? { ...j, job } : j));
  if (isFinal(job) && !isFinal(before && before.job) && job.state === "completed") installed.value += 1;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Follow a job to its end: its event stream, then (if that breaks) its object every second. */
async function follow(uuid) {
  try {
    const response = await request(`/models/jobs/${encodeURIComponent(uuid)}/events`, { headers: { Accept: "text/event-stream" } });
    for await (const { data } of sseEvents(response)) {
      if (data === "[DONE]") break;
      update(uuid, JSON.parse(data));
    }
  } catch (err) {
    if (isAbort(err)) return;
  }
  let failures = 0;
  for (;;) {
    const entry = jobs.value.find((j) => j.uuid === uuid);
    if (!entry || isFinal(entry.job)) return;
    try {
      update(uuid, await getJSON(`/models/jobs/${encodeURIComponent(uuid)}`));
      failures = 0;
    } catch (err) {
      failures += 1;
      if (failures >= 5) { showError(err, "Lost track of the install"); return; }
    }
    await sleep(POLL_MS);
  }
}

function track(uuid, id, job = null) {
  if (jobs.value.some((j) => j.uuid === uuid)) return;
  jobs.value = [{ uuid, id, job }, ...jobs.value];
  follow(uuid);
}

async function install(entry) {
  try {
    const answer = await postJSON("/models/apply", { id: entry.id || entry.name });
    track(answer.uuid, entry.id || entry.name);
  } catch (err) {
    showError(err, `Could not install ${entry.name}`);
  }
}

/** Ask the server to stop a job; it ends as "cancelled" once the download notices (its next bytes). */
async function cancel(uuid) {
  const mark = (cancelling) => { jobs.value = jobs.value.map((j) => (j.uuid === uuid ? { ...j, cancelling } : j)); };
  mark(true);
  try {
    update(uuid, await postJSON(`/models/jobs/${encodeURIComponent(uuid)}/cancel`, {}));
  } catch (err) {
    mark(false);
    showError(err, "Could not cancel the install");
  }
}

/** Pick up installs running on the server that this tab does not follow yet (started elsewhere). */
async function adoptRunning(signal) {
  const all = await getJSON("/models/jobs", { signal });
  for (const [uuid, job] of Object.entries(all || {})) {
    if (!isFinal(job) && !job.deletion) track(uuid, job.gallery_element_name || job.model || uuid, job);
  }
}

function percentOf(job) {
  if (!job) return 0;
  if (job.file_size_bytes > 0 && job.downloaded_bytes != null) return Math.min(100, (100 * job.downloaded_bytes) / job.file_size_bytes);
  return Math.min(100, Number(job.progress) || 0);
}

const STATE_LABELS = { queued: "Waiting", running: "Downloading", completed: "Installed", failed: "Failed", cancelled: "Cancelled" };

function Job({ entry }) {
  const { job, id, uuid, cancelling } = entry;
  const state = job ? job.state || (job.processed ? (job.error ? "failed" : "completed") : "running") : "queued";
  const percent = percentOf(job);
  const name = (job && job.model) || id;
  const done = FINAL.has(state);
  return html`<li class=${`install-job install-${state}`} data-job=${uuid}>
    <div class="install-job-head">
      <strong>${name}</strong>
      <span class="install-state">${cancelling && !FINAL.has(state) ? "Cancelling…" : STATE_LABELS[state] || state}</span>
    </div>
    ${!done ? html`<progress max="100" value=${percent} aria-label=${`Installing ${name}`}></progress>` : null}
    <p class="muted install-figures" role=${done ? undefined : "status"}>
      ${state === "completed" ? html`Ready to use: it is in the list above.`
        : state === "failed" ? null
        : state === "cancelled" ? "The download was stopped and its partial file removed."
        : html`${formatNumber(percent, 1)}%${job && job.file_size_bytes ? ` · ${formatBytes(job.downloaded_bytes || 0)} of ${formatBytes(job.file_size_bytes)}` : ""}${job && job.file_name ? ` · ${job.file_name}` : ""}`}
    </p>
    ${state === "failed" ? html`<p class="error-inline" role="alert">${(job && (job.error || job.message)) || "The install failed"}</p>` : null}
    <div class="row">
      ${!done ? html`<button type="button" class="small danger" disabled=${!!cancelling} onClick=${() => cancel(uuid)}
            aria-label=${`Cancel installing ${name}`}>Cancel</button>`
        : html`<button type="button" class="small" onClick=${() => { jobs.value = jobs.value.filter((j) => j.uuid !== uuid); }}
            aria-label=${`Dismiss ${name}`}>Dismiss</button>`}
    </div>
  </li>`;
}

function matches(entry, filter) {
  if (!filter) return true;
  const text = [entry.id, entry.name, entry.description, entry.license, ...(entry.tags || []), entry.gallery && entry.gallery.name]
    .filter(Boolean).join(" ").toLowerCase();
  return filter.toLowerCase().split(/\s+/).every((word) => text.includes(word));
}

function Available({ list, filter }) {
  const running = new Set(jobs.value.filter((j) => !isFinal(j.job)).map((j) => j.id));
  if (!list.length) {
    return html`<p class="muted">No gallery is configured. Start the server with <code>--galleries</code>, e.g.
      <code>[{"name": "localai", "url": "https://…/index.yaml"}]</code>, to install models from it.</p>`;
  }
  const found = list.filter((e) => matches(e, filter));
  return html`<p class="muted" role="status">${found.length} of ${list.length} gallery models${found.length > SHOWN ? `; the first ${SHOWN} are shown` : ""}</p>
    <ul class="gallery-list">
      ${found.slice(0, SHOWN).map((e) => {
        const key = e.id || e.name;
        return html`<li key=${key} class="gallery-entry">
          <div class="gallery-entry-text">
            <strong>${e.name}</strong>
            ${e.gallery && e.gallery.name ? html` <span class="muted">from ${e.gallery.name}</span>` : null}
            ${e.description ? html`<p class="gallery-description">${e.description}</p>` : null}
            <p class="muted gallery-meta">${[e.license, ...(e.tags || [])].filter(Boolean).join(" · ")}</p>
          </div>
          ${e.installed ? html`<span class="usecase">Installed</span>`
            : html`<button type="button" class="small primary" disabled=${running.has(key)} onClick=${() => install(e)}>
                ${running.has(key) ? "Installing…" : "Install"}<span class="visually-hidden"> ${e.name}</span></button>`}
        </li>`;
      })}
    </ul>`;
}

export function InstallPanel() {
  const available = useResource((signal) => getJSON("/models/available", { signal }), [installed.value]);
  const [filter, setFilter] = useState("");
  useEffect(() => {
    const controller = new AbortController();
    adoptRunning(controller.signal).catch(() => { /* the list below shows why the gallery is unreachable */ });
    return () => controller.abort();
  }, []);
  const list = jobs.value;
  return html`<section class="card" aria-labelledby="install-heading">
    <div class="models-head">
      <h2 id="install-heading">Install from a gallery</h2>
      <div class="models-filter">
        <label for="gallery-filter" class="visually-hidden">Filter the gallery</label>
        <input id="gallery-filter" type="search" placeholder="Filter by name, tag or licence" value=${filter}
          onInput=${(e) => setFilter(e.currentTarget.value)} />
      </div>
    </div>
    ${list.length ? html`<h3 class="install-jobs-heading">Installs</h3><ul class="install-jobs">${list.map((e) => html`<${Job} key=${e.uuid} entry=${e} />`)}</ul>` : null}
    <${Loaded} resource=${available} context="Could not list the gallery's models">
      ${(data) => html`<${Available} list=${Array.isArray(data) ? data : []} filter=${filter} />`}
    </${Loaded}>
  </section>`;
}
