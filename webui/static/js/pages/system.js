// System: the server's version, the models loaded now with their memory and device, and a few
// figures from /metrics (Prometheus text, summed over labels).
import { html } from "htm/preact";
import { getJSON, request } from "../api.js";
import { Loaded, PageHeader, formatBytes, formatNumber, useResource } from "../ui/widgets.js";

const FIGURES = [
  ["appliance_models_loaded", "Models loaded"],
  ["appliance_queue_depth", "Requests waiting"],
  ["appliance_model_loads_total", "Model loads"],
  ["appliance_model_evictions_total", "Evictions"],
  ["appliance_prompt_tokens_total", "Prompt tokens"],
  ["appliance_completion_tokens_total", "Completion tokens"],
  ["appliance_request_duration_seconds_count", "Requests served"],
];

/** Prometheus text -> {name: sum of its samples}. */
export function parseMetrics(text) {
  const sums = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[3]);
    if (Number.isFinite(value)) sums[match[1]] = (sums[match[1]] || 0) + value;
  }
  return sums;
}

async function loadSystem(signal) {
  const [version, system, metricsText] = await Promise.all([
    getJSON("/version", { signal }),
    getJSON("/system", { signal }),
    request("/metrics", { signal }).then((r) => r.text()),
  ]);
  return { version, system, metrics: parseMetrics(metricsText) };
}

function Models({ models }) {
  if (!models.length) return html`<p class="muted">No model is loaded; one loads on its first request.</p>`;
  const total = models.reduce((sum, m) => sum + (m.memory_bytes || 0), 0);
  return html`<div class="table-wrap"><table>
    <caption class="visually-hidden">Loaded models</caption>
    <thead><tr><th scope="col">Model</th><th scope="col">Backend</th><th scope="col">State</th><th scope="col">Device</th><th scope="col">Memory</th></tr></thead>
    <tbody>
      ${models.map((m) => html`<tr key=${m.id}>
        <td>${m.id}</td><td>${m.backend}</td><td>${m.status}</td><td>${m.device || "cpu"}</td><td>${formatBytes(m.memory_bytes)}</td>
      </tr>`)}
    </tbody>
    <tfoot><tr><th scope="row" colspan="4">Total</th><td>${formatBytes(total)}</td></tr></tfoot>
  </table></div>`;
}

export default function SystemPage() {
  const resource = useResource(loadSystem);
  return html`<${PageHeader} title="System">
      <button type="button" onClick=${resource.reload}>Refresh</button>
    </${PageHeader}>
    <${Loaded} resource=${resource} context="Could not load the system status">
      ${({ version, system, metrics }) => html`
        <section class="card" aria-labelledby="version-heading">
          <h2 id="version-heading">Version</h2>
          <p><strong>${version.name}</strong> <span data-testid="version">${version.version}</span></p>
          <p class="muted">Backends: ${system.backends.join(", ")}</p>
        </section>
        <section class="card" aria-labelledby="loaded-heading">
          <h2 id="loaded-heading">Loaded models</h2>
          <${Models} models=${system.loaded_models} />
        </section>
        <section class="card" aria-labelledby="metrics-heading">
          <h2 id="metrics-heading">Metrics</h2>
          <dl class="figures">
            ${FIGURES.filter(([name]) => name in metrics).map(([name, label]) => html`<div key=${name}>
              <dt>${label}</dt><dd>${formatNumber(metrics[name])}</dd>
            </div>`)}
          </dl>
        </section>`}
    </${Loaded}>`;
}
