// One chat message: the user's (plain text, editable) or the assistant's (markdown, streamed), its
// tools (copy, edit, regenerate), the numbered sources it was given and its token figures.
import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { CopyButton, formatNumber } from "../ui/widgets.js";
import { Markdown } from "./markdown-view.js";

/** "12 prompt + 34 completion tokens · 56.7 tokens/s · 0.21 s to first token". */
export function statsText(stats) {
  if (!stats) return "";
  const parts = [];
  if (stats.prompt_tokens != null) {
    parts.push(`${formatNumber(stats.prompt_tokens)} prompt + ${formatNumber(stats.completion_tokens)} completion tokens`);
  } else if (stats.completion_tokens != null) {
    parts.push(`~${formatNumber(stats.completion_tokens)} completion tokens`);
  }
  if (stats.tokens_per_second) parts.push(`${formatNumber(stats.tokens_per_second, 1)} tokens/s`);
  if (stats.first_token_ms != null) parts.push(`${formatNumber(stats.first_token_ms / 1000, 2)} s to first token`);
  return parts.join(" · ");
}

/** "runbook.pdf, page 3" / "pages 3-4", for a citation. */
export function citationLabel(citation) {
  const parts = [citation.filename || citation.file_id];
  if (citation.page_start != null) {
    parts.push(citation.page_end != null && citation.page_end !== citation.page_start
      ? `pages ${citation.page_start}–${citation.page_end}` : `page ${citation.page_start}`);
  }
  return parts.join(", ");
}

function Sources({ citations, onCite }) {
  if (!citations || !citations.length) return null;
  return html`<div class="sources" aria-label="Sources">
    <span class="muted">Sources:</span>
    ${citations.map((c) => html`<button type="button" class="small source-chip" key=${c.index}
      onClick=${() => onCite(c.index)}>[${c.index}] ${citationLabel(c)}</button>`)}
  </div>`;
}

function UserMessage({ message, busy, onEdit }) {
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(message.content);
  if (editing) {
    const save = (event) => { event.preventDefault(); setEditing(false); onEdit(draft); };
    return html`<form class="message-edit" onSubmit=${save}>
      <label class="visually-hidden" for=${`edit-${message.id}`}>Edit your message</label>
      <textarea id=${`edit-${message.id}`} value=${draft} onInput=${(e) => setDraft(e.currentTarget.value)}></textarea>
      <div class="message-tools">
        <button type="submit" class="primary small" disabled=${busy || !draft.trim()}>Save and send</button>
        <button type="button" class="small" onClick=${() => { setEditing(false); setDraft(message.content); }}>Cancel</button>
      </div>
    </form>`;
  }
  return html`<div class="message-body">${message.content}</div>
    <div class="message-tools">
      <${CopyButton} text=${message.content} label="Copy" />
      <button type="button" class="small" disabled=${busy} onClick=${() => { setDraft(message.content); setEditing(true); }}>Edit</button>
    </div>`;
}

function AssistantMessage({ message, sink, canRegenerate, busy, onRegenerate, onCite }) {
  const citations = message.citations || [];
  return html`<div class="message-body">
      <${Markdown} text=${message.content} sink=${sink} citations=${citations.length} onCite=${onCite} />
    </div>
    ${message.stopped ? html`<p class="message-stopped">Stopped.</p>` : null}
    ${message.error ? html`<p class="message-error">${message.error}</p>` : null}
    ${message.retrieval && message.retrieval.status !== "ok"
      ? html`<p class="muted">Documents: ${message.retrieval.status.replaceAll("_", " ")}</p>` : null}
    <${Sources} citations=${citations} onCite=${onCite} />
    ${sink ? null : html`<div class="message-tools">
      <${CopyButton} text=${message.content} label="Copy" />
      ${canRegenerate ? html`<button type="button" class="small" disabled=${busy} onClick=${onRegenerate}>Regenerate</button>` : null}
      <span class="message-stats">${statsText(message.stats)}</span>
    </div>`}`;
}

/** A message in the log. `sink` is set while this message is being streamed. */
export function Message(props) {
  const { message } = props;
  const who = message.role === "user" ? "You" : message.model || "Assistant";
  return html`<article class=${`message message-${message.role}`} aria-label=${message.role === "user" ? "Your message" : "Answer"}
      data-message-id=${message.id} aria-busy=${props.sink ? "true" : "false"}>
    <div class="message-role">${who}</div>
    ${message.role === "user" ? html`<${UserMessage} ...${props} />` : html`<${AssistantMessage} ...${props} />`}
  </article>`;
}
