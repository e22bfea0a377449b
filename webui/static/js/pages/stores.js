// Stores: LocalAI's raw /stores, as GET /stores describes them (count, dimension, embedding model,
// index kind, its options and measured tuning), with export (a backup file downloaded as a blob),
// import (a backup file uploaded with progress) and drop behind a confirmation.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { getJSON, postJSON, request, upload } from "../api.js";
import { Confirm } from "../ui/confirm.js";
import { ErrorMessage, showError } from "../ui/errors.js";
import { Loaded, PageHeader, formatNumber, useResource } from "../ui/widgets.js";

const label = (name) => (name === "" ? "(default)" : name);

/** {a: 1, b: 0.5} -> "a 1 · b 0.5" (numbers rounded for reading). */
function pairs(options) {
  if (!options || !Object.keys(options).length) return null;
  return Object.entries(options)
    .map(([key, value]) => `${key} ${typeof value === "number" ? formatNumber(value, Number.isInteger(value) ? 0 : 3) : JSON.stringify(value)}`)
    .join(" · ");
}

/** The file name the server proposes (Content-Disposition), else `<store>.store.jsonl.gz`. */
function downloadName(response, name) {
  const header = response.headers.get("content-disposition") || "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(header);
  if (star) return decodeURIComponent(star[1]);
  const plain = /filename="?([^";]+)"?/i.exec(header);
  return plain ? plain[1] : `${name || "default"}.store.jsonl.gz`;
}

async function exportStore(name) {
  const response = await request("/stores/export", { json: { store: name } });
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = downloadName(response, name);
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function ExportButton({ name }) {
  const [busy, setBusy] = useState(false);
  const onClick = async () => {
    setBusy(true);
    try {
      await exportStore(name);
    } catch (err) {
      showError(err, `Could not export ${label(name)}`);
    } finally {
      setBusy(false);
    }
  };
  return html`<button type="button" class="small" aria-label=${`Export ${label(name)}`} onClick=${onClick} disabled=${busy}>
    ${busy ? "Exporting…" : "Export"}</button>`;
}

function StoreTable({ stores, onDrop }) {
  if (!stores.length) return html`<p class="muted">No store yet: <code>POST /stores/set</code> makes one on its first keys.</p>`;
  return html`<div class="table-wrap"><table class="raw-stores">
    <caption class="visually-hidden">Stores</caption>
    <thead><tr>
      <th scope="col">Store</th><th scope="col">Count</th><th scope="col">Dimension</th><th scope="col">Embedding model</th>
      <th scope="col">Index</th><th scope="col">Tuning</th><th scope="col">Created</th>
      <th scope="col"><span class="visually-hidden">Actions</span></th>
    </tr></thead>
    <tbody>
      ${stores.map((s) => html`<tr key=${s.name} data-store=${s.name}>
        <th scope="row" class="store-name">${label(s.name)}</th>
        <td data-testid="count">${formatNumber(s.count)}</td>
        <td data-testid="dimension">${s.dimension ?? "–"}</td>
        <td>${s.embedding_model || "–"}${s.embedding_dimension ? html` <span class="muted">(${s.embedding_dimension})</span>` : null}</td>
        <td>${s.index_kind} <span class="muted">${s.metric}</span>
          ${pairs(s.index_options) ? html`<div class="muted small-text">${pairs(s.index_options)}</div>` : null}</td>
        <td>${pairs(s.tuned) || html`<span class="muted">${s.index_kind === "exact" ? "not needed" : "not measured yet"}</span>`}</td>
        <td>${new Date(s.created_at).toLocaleString()}</td>
        <td><div class="row">
          <${ExportButton} name=${s.name} />
          ${s.name === "" ? null : html`<button type="button" class="small danger" aria-label=${`Drop ${s.name}`}
            onClick=${() => onDrop(s)}>Drop</button>`}
        </div></td>
      </tr>`)}
    </tbody>
  </table></div>`;
}

function ImportForm({ onImported }) {
  const [file, setFile] = useState(null);
  const [name, setName] = useState("");
  const [replace, setReplace] = useState(false);
  const [progress, setProgress] = useState(null);
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    if (!file) return;
    const form = new FormData();
    form.append("file", file, file.name);
    const params = new URLSearchParams();
    if (name.trim()) params.set("store", name.trim());
    if (replace) params.set("replace", "true");
    setError(null);
    setResult(null);
    setProgress({ loaded: 0, total: file.size });
    try {
      const query = params.toString();
      const info = await upload(`/stores/import${query ? `?${query}` : ""}`, form, { onProgress: setProgress });
      setResult(info);
      onImported();
    } catch (err) {
      setError(err);
    } finally {
      setProgress(null);
    }
  };
  return html`<section class="card" aria-labelledby="import-heading">
    <h2 id="import-heading">Import a backup</h2>
    <form class="store-import" onSubmit=${submit}>
      <div class="field">
        <label for="import-file">Backup file (from Export)</label>
        <input type="file" id="import-file" accept=".gz,.jsonl,application/gzip"
          onChange=${(e) => setFile(e.currentTarget.files[0] || null)} />
      </div>
      <div class="field grow">
        <label for="import-name">Store name</label>
        <input type="text" id="import-name" value=${name} maxlength="200" placeholder="the name in the backup"
          onInput=${(e) => setName(e.currentTarget.value)} />
      </div>
      <label class="choice"><input type="checkbox" checked=${replace} onChange=${(e) => setReplace(e.currentTarget.checked)} />
        Replace a store of that name</label>
      <button type="submit" class="primary" disabled=${!file || progress}>${progress ? "Importing…" : "Import"}</button>
    </form>
    ${progress ? html`<progress max=${progress.total || 1} value=${progress.loaded} aria-label="Import upload progress"></progress>` : null}
    <${ErrorMessage} error=${error} context="Could not import" />
    ${result ? html`<p role="status">Imported <strong>${label(result.name)}</strong>: ${formatNumber(result.count)} vectors.</p>` : null}
  </section>`;
}

export default function StoresPage() {
  const stores = useResource((signal) => getJSON("/stores", { signal }));
  const [dropping, setDropping] = useState(null);
  const drop = async () => {
    await postJSON("/stores/drop", { name: dropping.name });
    stores.reload();
  };
  return html`<${PageHeader} title="Stores">
      <button type="button" onClick=${stores.reload}>Refresh</button>
    </${PageHeader}>
    <p class="muted">LocalAI's vector stores at <code>/stores</code>, as clients fill them with
      <code>/stores/set</code>. Documents live in vector stores on the <a href="#/documents">Documents</a> page.</p>
    <section class="card" aria-labelledby="raw-stores-heading">
      <h2 id="raw-stores-heading">Stores</h2>
      <${Loaded} resource=${stores} context="Could not list the stores">
        ${(data) => html`<${StoreTable} stores=${data.stores} onDrop=${setDropping} />`}
      </${Loaded}>
    </section>
    <${ImportForm} onImported=${stores.reload} />
    ${dropping ? html`<${Confirm} title=${`Drop ${dropping.name}?`} action="Drop" onConfirm=${drop} onClose=${() => setDropping(null)}>
      <p>Its ${formatNumber(dropping.count)} vectors are deleted for good. Export it first to keep a backup.</p>
    </${Confirm}>` : null}`;
}
