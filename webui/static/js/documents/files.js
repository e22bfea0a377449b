// The files of a vector store: name, status (with the phase while in progress and the reason when
// failed), chunks, text size, when added, and removal. Refreshed while any file is in progress.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { deleteJSON, getJSON } from "../api.js";
import { Confirm } from "../ui/confirm.js";
import { Loaded, formatBytes, formatDate, formatNumber, useResource } from "../ui/widgets.js";
import { STATUS_LABELS, describePhase } from "./progress.js";
import { fileNames } from "./uploads.js";

const PAGE = 100;
const MAX_PAGES = 10;
const REFRESH_MS = 1500;

/** Every file of the store (up to MAX_PAGES pages), newest first, each with its file name. */
async function loadFiles(storeId, signal) {
  const base = `/v1/vector_stores/${encodeURIComponent(storeId)}/files?limit=${PAGE}`;
  const files = [];
  let after = null;
  let more = true;
  for (let page = 0; page < MAX_PAGES && more; page++) {
    const list = await getJSON(after ? `${base}&after=${encodeURIComponent(after)}` : base, { signal });
    files.push(...list.data);
    more = list.has_more;
    after = list.last_id;
  }
  const unknown = files.filter((f) => !fileNames.has(f.id));
  await Promise.all(unknown.map(async (f) => {
    try {
      const file = await getJSON(`/v1/files/${encodeURIComponent(f.id)}`, { signal });
      fileNames.set(f.id, file.filename);
    } catch (err) {
      if (signal.aborted) throw err;
      fileNames.set(f.id, f.id);  // the file itself is gone: show its id
    }
  }));
  return { files, truncated: more };
}

function Status({ file }) {
  const label = STATUS_LABELS[file.status] || file.status;
  return html`<span class=${`badge status-${file.status}`}>${label}</span>
    ${file.status === "in_progress" ? html`<div class="muted small-text">${describePhase(file.progress)}</div>` : null}
    ${file.last_error ? html`<div class="file-error">${file.last_error.message}</div>` : null}`;
}

function RemoveFile({ storeId, file, name, onClose, onRemoved }) {
  const [alsoDelete, setAlsoDelete] = useState(true);
  const remove = async () => {
    await deleteJSON(`/v1/vector_stores/${encodeURIComponent(storeId)}/files/${encodeURIComponent(file.id)}`);
    if (alsoDelete) {
      try {
        await deleteJSON(`/v1/files/${encodeURIComponent(file.id)}`);
      } catch (err) {
        if (err.status !== 404) throw err;
      }
    }
    onRemoved();
  };
  return html`<${Confirm} title=${`Remove ${name}?`} action="Remove" onConfirm=${remove} onClose=${onClose}>
    <p>Its chunks leave this store's search at once.</p>
    <label class="choice"><input type="checkbox" checked=${alsoDelete}
      onChange=${(e) => setAlsoDelete(e.currentTarget.checked)} />
      Also delete the uploaded file from the appliance (and from every store that holds it)</label>
  </${Confirm}>`;
}

/** The store's file table. `version` changes when an upload attaches or settles a file. */
export function FileList({ storeId, version, onChanged }) {
  const resource = useResource((signal) => loadFiles(storeId, signal), [storeId, version]);
  const [removing, setRemoving] = useState(null);
  const busy = resource.data && resource.data.files.some((f) => f.status === "in_progress");
  useEffect(() => {
    if (!busy || resource.loading) return undefined;
    const timer = setTimeout(resource.reload, REFRESH_MS);
    return () => clearTimeout(timer);
  }, [busy, resource.loading, resource.data]);
  const wasBusy = useRef(false);
  useEffect(() => {  // a file finished: the store's figures changed
    if (wasBusy.current && !busy) onChanged();
    wasBusy.current = busy;
  }, [busy]);
  return html`<section class="card" aria-labelledby="files-heading">
    <div class="row section-head">
      <h2 id="files-heading">Files</h2>
      <button type="button" class="small" onClick=${resource.reload}>Refresh</button>
    </div>
    <${Loaded} resource=${resource} context="Could not list the files">
      ${({ files, truncated }) => files.length === 0
        ? html`<p class="muted">No documents yet: drop files above to add them.</p>`
        : html`<div class="table-wrap"><table class="doc-files">
          <caption class="visually-hidden">Files in this store</caption>
          <thead><tr>
            <th scope="col">File</th><th scope="col">Status</th><th scope="col">Chunks</th>
            <th scope="col">Text</th><th scope="col">Added</th><th scope="col"><span class="visually-hidden">Actions</span></th>
          </tr></thead>
          <tbody>
            ${files.map((file) => {
              const name = fileNames.get(file.id) || file.id;
              return html`<tr key=${file.id} data-file-id=${file.id}>
                <td class="file-name">${name}</td>
                <td><${Status} file=${file} /></td>
                <td>${formatNumber(file.chunk_count)}</td>
                <td>${formatBytes(file.usage_bytes)}</td>
                <td>${formatDate(file.created_at)}</td>
                <td><button type="button" class="small danger" aria-label=${`Remove ${name}`}
                  onClick=${() => setRemoving({ file, name })}>Remove</button></td>
              </tr>`;
            })}
          </tbody>
        </table></div>
        ${truncated ? html`<p class="muted">Showing the newest ${files.length} files.</p>` : null}`}
    </${Loaded}>
    ${removing ? html`<${RemoveFile} storeId=${storeId} file=${removing.file} name=${removing.name}
      onClose=${() => setRemoving(null)} onRemoved=${() => { resource.reload(); onChanged(); }} />` : null}
  </section>`;
}
