// Every vector store with its file counts, embedding model and size; a form to create one (name and
// embedding model, from the models that embed) and deletion behind a confirmation.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { deleteJSON, getJSON, postJSON } from "../api.js";
import { navigate, href } from "../router.js";
import { Confirm } from "../ui/confirm.js";
import { showError } from "../ui/errors.js";
import { useModels } from "../ui/model-select.js";
import { Loaded, PageHeader, formatBytes, formatDate, formatNumber, useResource } from "../ui/widgets.js";
import { dropQueue } from "./uploads.js";

const PAGE = 100;
const MAX_PAGES = 10;

/** Every vector store (up to MAX_PAGES pages), newest first. */
export async function listStores(signal) {
  const stores = [];
  let after = null;
  let more = true;
  for (let page = 0; page < MAX_PAGES && more; page++) {
    const query = after ? `?limit=${PAGE}&after=${encodeURIComponent(after)}` : `?limit=${PAGE}`;
    const list = await getJSON(`/v1/vector_stores${query}`, { signal });
    stores.push(...list.data);
    more = list.has_more;
    after = list.last_id;
  }
  return stores;
}

export const storeName = (store) => store.name || store.id;

function CreateStore({ onCreated }) {
  const models = useModels("embeddings");
  const [name, setName] = useState("");
  const [model, setModel] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    try {
      const body = { name: name.trim() };
      if (model) body.embedding_model = model;
      const store = await postJSON("/v1/vector_stores", body);
      setName("");
      onCreated(store);
    } catch (err) {
      showError(err, "Could not create the store");
    } finally {
      setBusy(false);
    }
  };
  return html`<section class="card" aria-labelledby="new-store-heading">
    <h2 id="new-store-heading">New vector store</h2>
    <form class="new-store" onSubmit=${submit}>
      <div class="field grow">
        <label for="store-name">Name</label>
        <input type="text" id="store-name" value=${name} maxlength="256" required
          onInput=${(e) => setName(e.currentTarget.value)} placeholder="e.g. manuals" />
      </div>
      <div class="field">
        <label for="store-model">Embedding model</label>
        <select id="store-model" value=${model} onChange=${(e) => setModel(e.currentTarget.value)}>
          <option value="">The server's default</option>
          ${(models.data || []).map((id) => html`<option key=${id} value=${id}>${id}</option>`)}
        </select>
      </div>
      <button type="submit" class="primary" disabled=${busy || !name.trim()}>${busy ? "Creating…" : "Create"}</button>
    </form>
    ${models.error ? html`<p class="muted">The models could not be listed (${models.error.message}); the server's default will be used.</p>` : null}
  </section>`;
}

function StoreTable({ stores, onDelete }) {
  if (!stores.length) return html`<p class="muted">No vector store yet: create one above, then add documents to it.</p>`;
  return html`<div class="table-wrap"><table class="doc-stores">
    <caption class="visually-hidden">Vector stores</caption>
    <thead><tr>
      <th scope="col">Name</th><th scope="col">Files</th><th scope="col">In progress</th><th scope="col">Failed</th>
      <th scope="col">Embedding model</th><th scope="col">Text</th><th scope="col">Created</th>
      <th scope="col"><span class="visually-hidden">Actions</span></th>
    </tr></thead>
    <tbody>
      ${stores.map((s) => html`<tr key=${s.id}>
        <td><a href=${href("documents", s.id)}>${storeName(s)}</a></td>
        <td>${formatNumber(s.file_counts.completed)} / ${formatNumber(s.file_counts.total)}</td>
        <td>${formatNumber(s.file_counts.in_progress)}</td>
        <td>${formatNumber(s.file_counts.failed)}</td>
        <td>${s.embedding_model || "–"}${s.embedding_dimension ? html` <span class="muted">(${s.embedding_dimension})</span>` : null}</td>
        <td>${formatBytes(s.usage_bytes)}</td>
        <td>${formatDate(s.created_at)}</td>
        <td><button type="button" class="small danger" aria-label=${`Delete ${storeName(s)}`} onClick=${() => onDelete(s)}>Delete</button></td>
      </tr>`)}
    </tbody>
  </table></div>`;
}

/** The confirmation before deleting a vector store. */
export function DeleteStore({ store, onClose, onDeleted }) {
  const remove = async () => {
    await deleteJSON(`/v1/vector_stores/${encodeURIComponent(store.id)}`);
    dropQueue(store.id);
    onDeleted();
  };
  return html`<${Confirm} title=${`Delete ${storeName(store)}?`} action="Delete" onConfirm=${remove} onClose=${onClose}>
    <p>The store and its search index go; ingests still running in it stop. The uploaded files stay on
      the appliance (they are listed by <code>/v1/files</code>).</p>
  </${Confirm}>`;
}

export function StoreList() {
  const stores = useResource(listStores);
  const [deleting, setDeleting] = useState(null);
  return html`<${PageHeader} title="Documents">
      <button type="button" onClick=${stores.reload}>Refresh</button>
    </${PageHeader}>
    <${CreateStore} onCreated=${(store) => navigate("documents", store.id)} />
    <section class="card" aria-labelledby="stores-heading">
      <h2 id="stores-heading">Vector stores</h2>
      <${Loaded} resource=${stores} context="Could not list the vector stores">
        ${(list) => html`<${StoreTable} stores=${list} onDelete=${setDeleting} />`}
      </${Loaded}>
    </section>
    ${deleting ? html`<${DeleteStore} store=${deleting} onClose=${() => setDeleting(null)} onDeleted=${stores.reload} />` : null}`;
}
