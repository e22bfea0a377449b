// The "Add documents" panel: a drop zone (and a file picker) feeding the store's upload queue, and
// one row per file with its progress bar, what it is doing (uploading, pages read, chunks embedded),
// its failure reason and a cancel button.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { formatBytes } from "../ui/widgets.js";
import { describePhase, percentOf } from "./progress.js";

function stateText(item) {
  switch (item.step) {
    case "waiting": return "Waiting to upload";
    case "uploading": {
      const pct = item.total ? Math.round((100 * item.loaded) / item.total) : 0;
      return `Uploading ${pct}% (${formatBytes(item.loaded)} of ${formatBytes(item.total)})`;
    }
    case "attaching": return "Adding to the store";
    case "cancelling": return "Cancelling…";
    case "completed": return `Ready: ${item.chunks ?? 0} chunk${item.chunks === 1 ? "" : "s"}`;
    case "failed": return "Failed";
    case "cancelled": return "Cancelled";
    default: return describePhase(item.progress || { phase: item.step });
  }
}

function UploadRow({ item, onCancel }) {
  const done = item.status !== "in_progress";
  const value = percentOf(item.step, item);
  return html`<li class=${`upload upload-${item.status}`} data-testid="upload">
    <div class="upload-head">
      <span class="upload-name">${item.name}</span>
      <span class="muted upload-size">${formatBytes(item.size)}</span>
      ${done ? null : html`<button type="button" class="small" aria-label=${`Cancel ${item.name}`}
        onClick=${onCancel} disabled=${item.step === "cancelling"}>Cancel</button>`}
    </div>
    ${item.status === "in_progress" || item.status === "completed"
      ? html`<progress max="100" value=${value} aria-label=${`Progress of ${item.name}`}></progress>`
      : null}
    <p class="upload-state" data-step=${item.step}>${stateText(item)}</p>
    ${item.error ? html`<p class="error-inline">${item.error}</p>` : null}
  </li>`;
}

/** The drop zone, the picker and the queue's rows. */
export function UploadPanel({ queue }) {
  const [over, setOver] = useState(false);
  const items = queue.items.value;
  const finished = items.filter((i) => i.status !== "in_progress").length;
  const onDrop = (e) => {
    e.preventDefault();
    setOver(false);
    const files = e.dataTransfer && e.dataTransfer.files;
    if (files && files.length) queue.add(files);
  };
  const onDragOver = (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
    setOver(true);
  };
  const onPick = (e) => {
    const input = e.currentTarget;
    if (input.files && input.files.length) queue.add(input.files);
    input.value = "";  // picking the same file again is a new upload
  };
  return html`<section class="card" aria-labelledby="upload-heading">
    <h2 id="upload-heading">Add documents</h2>
    <div class=${`drop-zone${over ? " over" : ""}`} data-testid="drop-zone"
      onDragOver=${onDragOver} onDragEnter=${onDragOver} onDragLeave=${() => setOver(false)} onDrop=${onDrop}>
      <p>Drop PDF, Word, HTML, Markdown or text files here, or</p>
      <input type="file" id="doc-files" class="visually-hidden file-input" multiple onChange=${onPick} />
      <label for="doc-files" class="file-button">Choose files</label>
    </div>
    ${items.length ? html`
      <div class="row upload-summary">
        <span role="status">${finished} of ${items.length} file${items.length === 1 ? "" : "s"} finished</span>
        ${finished ? html`<button type="button" class="small" onClick=${() => queue.clearFinished()}>Clear finished</button>` : null}
      </div>
      <ul class="uploads" aria-label="Uploads">
        ${items.map((item) => html`<${UploadRow} key=${item.key} item=${item} onCancel=${() => queue.cancel(item.key)} />`)}
      </ul>` : null}
  </section>`;
}
