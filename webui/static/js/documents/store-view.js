// One vector store: its figures (files by status, text size, embedding model), uploads with
// progress, search, and its file list.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { getJSON } from "../api.js";
import { href, navigate } from "../router.js";
import { Loaded, PageHeader, formatBytes, formatDate, formatNumber, useResource } from "../ui/widgets.js";
import { FileList } from "./files.js";
import { SearchPanel } from "./search.js";
import { DeleteStore, storeName } from "./store-list.js";
import { UploadPanel } from "./upload-panel.js";
import { queueFor } from "./uploads.js";

function Figures({ store }) {
  const counts = store.file_counts;
  const chunking = store.chunking_strategy && store.chunking_strategy.type === "static"
    ? `${store.chunking_strategy.static.max_chunk_size_tokens} tokens` : "automatic";
  return html`<dl class="figures">
    <div><dt>Files ready</dt><dd data-testid="files-ready">${formatNumber(counts.completed)}</dd></div>
    <div><dt>In progress</dt><dd>${formatNumber(counts.in_progress)}</dd></div>
    <div><dt>Failed</dt><dd>${formatNumber(counts.failed)}</dd></div>
    <div><dt>Cancelled</dt><dd>${formatNumber(counts.cancelled)}</dd></div>
    <div><dt>Text indexed</dt><dd>${formatBytes(store.usage_bytes)}</dd></div>
    <div><dt>Embedding model</dt><dd class="figure-text">${store.embedding_model || "–"}
      ${store.embedding_dimension ? html` <span class="muted">(${store.embedding_dimension} dims)</span>` : null}</dd></div>
    <div><dt>Chunking</dt><dd class="figure-text">${chunking}</dd></div>
    <div><dt>Created</dt><dd class="figure-text">${formatDate(store.created_at)}</dd></div>
  </dl>
  ${store.reindex ? html`<p class="muted">Reindexing: ${store.reindex.status}</p>` : null}`;
}

export function StoreView({ storeId }) {
  const queue = queueFor(storeId);
  const version = queue.version.value;
  const store = useResource(
    (signal) => getJSON(`/v1/vector_stores/${encodeURIComponent(storeId)}`, { signal }), [storeId, version],
  );
  const [deleting, setDeleting] = useState(false);
  return html`<${PageHeader} title="Documents">
      <a href=${href("documents")} class="back-link">All vector stores</a>
    </${PageHeader}>
    <${Loaded} resource=${store} context="Could not open this vector store">
      ${(s) => html`<section class="card" aria-labelledby="store-heading">
        <div class="row section-head">
          <h2 id="store-heading">${storeName(s)}</h2>
          <div class="row">
            <button type="button" class="small" onClick=${store.reload}>Refresh</button>
            <button type="button" class="small danger" onClick=${() => setDeleting(true)}>Delete store</button>
          </div>
        </div>
        <p class="muted store-id"><code>${s.id}</code></p>
        <${Figures} store=${s} />
      </section>
      <${UploadPanel} queue=${queue} />
      <${SearchPanel} storeId=${storeId} />
      <${FileList} storeId=${storeId} version=${version} onChanged=${store.reload} />
      ${deleting ? html`<${DeleteStore} store=${s} onClose=${() => setDeleting(false)}
        onDeleted=${() => navigate("documents")} />` : null}`}
    </${Loaded}>`;
}
