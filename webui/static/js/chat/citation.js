// The source behind a citation [n]: file, pages, section, score and the excerpt the answer was
// given, with a button that opens the file itself (fetched with the key, as a blob).
import { html } from "htm/preact";
import { blobURL } from "../api.js";
import { showError } from "../ui/errors.js";
import { Dialog, formatNumber } from "../ui/widgets.js";
import { citationLabel } from "./message.js";

async function openFile(citation) {
  const tab = window.open("", "_blank");
  try {
    const url = await blobURL(`/v1/files/${encodeURIComponent(citation.file_id)}/content`);
    const target = citation.page_start != null ? `${url}#page=${citation.page_start}` : url;
    if (tab) tab.location.href = target; else window.location.assign(target);
  } catch (err) {
    if (tab) tab.close();
    showError(err, `Could not open ${citation.filename}`);
  }
}

export function CitationPanel({ citation, onClose }) {
  const pages = citation.page_start == null ? "–"
    : citation.page_end != null && citation.page_end !== citation.page_start
      ? `${citation.page_start}–${citation.page_end}` : String(citation.page_start);
  return html`<${Dialog} title=${`Source ${citation.index}: ${citationLabel(citation)}`} onClose=${onClose} className="citation" drawer>
    <dl>
      <dt>File</dt><dd>${citation.filename}</dd>
      <dt>Page</dt><dd data-testid="citation-page">${pages}</dd>
      <dt>Section</dt><dd>${citation.heading_path || "–"}</dd>
      <dt>Score</dt><dd>${formatNumber(citation.score, 3)}</dd>
      <dt>Cited</dt><dd>${citation.cited ? "yes, the answer names it" : "given to the model, not named in the answer"}</dd>
    </dl>
    <h3 class="visually-hidden">Excerpt</h3>
    <blockquote aria-label="Excerpt" tabindex="0">${citation.text}</blockquote>
    <div class="row" style="margin-top: .75rem">
      <button type="button" onClick=${() => openFile(citation)}>Open the file</button>
    </div>
  </${Dialog}>`;
}
