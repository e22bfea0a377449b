// Models: every model the server offers (GET /v1/models) with its backend and use cases, and, from
// GET /system (polled), its state now (not loaded, loading, ready, busy), memory and device; load
// (POST /backend/load) and unload (POST /backend/shutdown). Below, the gallery install panel.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { getJSON, postJSON } from "../api.js";
import { InstallPanel, installed } from "../models/install.js";
import { showError } from "../ui/errors.js";
import { Loaded, PageHeader, formatBytes, useResource } from "../ui/widgets.js";

const POLL_MS = 2000;
const STATES = {
  none: { label: "Not loaded", tone: "off" },
  loading: { label: "Loading", tone: "busy" },
  idle: { label: "Ready", tone: "ok" },
  busy: { label: "Busy", tone: "busy" },
  unloading: { label: "Unloading", tone: "busy" },
  failed: { label: "Load failed", tone: "bad" },
};

async function loadModels(signal) {
  const [list, system] = await Promise.all([getJSON("/v1/models", { signal }), getJSON("/system", { signal })]);
  const loaded = new Map(system.loaded_models.map((m) => [m.id, m]));
  return { models: list.data, loaded };
}

/** Reload `resource` every `ms` while the page is shown and the tab visible. */
function usePolling(resource, ms) {
  useEffect(() => {
    const timer = setInterval(() => { if (document.visibilityState === "visible") resource.reload(); }, ms);
    return () => clearInterval(timer);
  }, [resource.reload, ms]);
}

function matches(model, filter) {
  if (!filter) return true;
  const text = [model.id, model.backend || "", ...(model.usecases || [])].join(" ").toLowerCase();
  return filter.toLowerCase().split(/\s+/).every((word) => text.includes(word));
}

function StateBadge({ state, title }) {
  const s = STATES[state] || { label: state, tone: "busy" };
  return html`<span class=${`model-state model-state-${s.tone}`} title=${title}>${s.label}</span>`;
}

function ModelRow({ model, live, pending, failure, onLoad, onUnload }) {
  const state = pending === "load" && !live ? "loading"
    : pending === "unload" ? "unloading"
    : live ? live.status
    : failure ? "failed" : "none";
  return html`<tr data-model=${model.id}>
    <th scope="row" data-label="Model">${model.id}</th>
    <td data-label="State"><${StateBadge} state=${state} title=${failure || undefined} />
      ${failure && !live ? html`<span class="model-failure">${failure}</span>` : null}</td>
    <td data-label="Actions">
      ${live
        ? html`<button type="button" class="small" disabled=${!!pending} onClick=${() => onUnload(model.id)} aria-label=${`Unload ${model.id}`}>Unload</button>`
        : html`<button type="button" class="small" disabled=${!!pending} onClick=${() => onLoad(model.id)} aria-label=${`Load ${model.id}`}>Load</button>`}
    </td>
    <td data-label="Memory">${live ? formatBytes(live.memory_bytes) : "–"}</td>
    <td data-label="Device">${live ? live.device || "cpu" : "–"}</td>
    <td data-label="Backend">${model.backend || html`<span class="muted">detected on load</span>`}</td>
    <td data-label="Use cases"><span class="usecases">${(model.usecases || []).map((u) => html`<span class="usecase" key=${u}>${u}</span>`)}</span></td>
  </tr>`;
}

function ModelTable({ data, filter }) {
  const [pending, setPending] = useState({}); // model id -> "load" | "unload"
  const [failures, setFailures] = useState({}); // model id -> the last load's error message
  const { models, loaded } = data.value;
  const act = async (id, kind) => {
    setPending((p) => ({ ...p, [id]: kind }));
    try {
      if (kind === "load") {
        await postJSON("/backend/load", { model: id });
        setFailures((f) => { const { [id]: _, ...rest } = f; return rest; });
      } else {
        await postJSON("/backend/shutdown", { model: id });
      }
    } catch (err) {
      if (kind === "load") setFailures((f) => ({ ...f, [id]: err.message || String(err) }));
      showError(err, `Could not ${kind} ${id}`);
    } finally {
      setPending((p) => { const { [id]: _, ...rest } = p; return rest; });
      data.reload();
    }
  };
  const shown = models.filter((m) => matches(m, filter));
  const memory = [...loaded.values()].reduce((sum, m) => sum + (m.memory_bytes || 0), 0);
  return html`<p class="muted" role="status">${models.length} models · ${loaded.size} loaded · ${formatBytes(memory)} in use</p>
    ${shown.length ? html`<div class="table-wrap"><table class="models-table">
      <caption class="visually-hidden">Models</caption>
      <thead><tr><th scope="col">Model</th><th scope="col">State</th><th scope="col"><span class="visually-hidden">Actions</span></th>
        <th scope="col">Memory</th><th scope="col">Device</th><th scope="col">Backend</th><th scope="col">Use cases</th></tr></thead>
      <tbody>
        ${shown.map((m) => html`<${ModelRow} key=${m.id} model=${m} live=${loaded.get(m.id)} pending=${pending[m.id]}
          failure=${failures[m.id]} onLoad=${(id) => act(id, "load")} onUnload=${(id) => act(id, "unload")} />`)}
      </tbody>
    </table></div>`
    : html`<p class="muted">${models.length ? "No model matches the filter." : "No model yet: install one below, or put a model file or YAML in the models path."}</p>`}`;
}

export default function ModelsPage() {
  const resource = useResource(loadModels, [installed.value]);
  const [filter, setFilter] = useState("");
  usePolling(resource, POLL_MS); // a poll keeps the data shown while it runs: no "Loading…" flash
  return html`<${PageHeader} title="Models">
      <button type="button" onClick=${resource.reload}>Refresh</button>
    </${PageHeader}>
    <section class="card" aria-labelledby="models-heading">
      <div class="models-head">
        <h2 id="models-heading">Models</h2>
        <div class="models-filter">
          <label for="models-filter" class="visually-hidden">Filter the models</label>
          <input id="models-filter" type="search" placeholder="Filter by name, backend or use case" value=${filter}
            onInput=${(e) => setFilter(e.currentTarget.value)} />
        </div>
      </div>
      <${Loaded} resource=${resource} context="Could not list the models">
        ${(data) => html`<${ModelTable} data=${{ value: data, reload: resource.reload }} filter=${filter} />`}
      </${Loaded}>
    </section>
    <${InstallPanel} />`;
}
