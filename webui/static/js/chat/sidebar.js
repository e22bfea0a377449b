// The conversations kept in this browser: new, search, open, delete, export and import (JSON).
import { html } from "htm/preact";
import { useMemo, useRef, useState } from "preact/hooks";
import { showError } from "../ui/errors.js";
import { deleteConversation, exportConversations, importConversations, searchConversations } from "./store.js";

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function Conversations({ current, version, open, onOpen, onNew, onDeleted, onImported }) {
  const [query, setQuery] = useState("");
  const [status, setStatus] = useState("");
  const file = useRef(null);
  const found = useMemo(() => searchConversations(query), [query, version]);

  const onImport = async (event) => {
    const chosen = event.currentTarget.files[0];
    event.currentTarget.value = "";
    if (!chosen) return;
    try {
      const count = importConversations(await chosen.text());
      setStatus(`Imported ${count} conversation${count === 1 ? "" : "s"}.`);
      onImported();
    } catch (err) {
      showError(err, `Could not import ${chosen.name}`);
    }
  };

  return html`<aside class=${`chat-side${open ? " open" : ""}`} aria-label="Conversations">
    <button type="button" class="primary" onClick=${onNew}>New chat</button>
    <label class="visually-hidden" for="chat-search">Search conversations</label>
    <input id="chat-search" type="search" placeholder="Search conversations" value=${query}
      onInput=${(e) => setQuery(e.currentTarget.value)} />
    <ul>
      ${found.map((c) => html`<li key=${c.id}>
        <button type="button" class="conv-link" aria-current=${c.id === current ? "true" : undefined}
          onClick=${() => onOpen(c.id)} title=${c.title}>${c.title}</button>
        <button type="button" class="icon-button" aria-label=${`Delete conversation ${c.title}`}
          onClick=${() => { if (confirm(`Delete "${c.title}"?`)) { deleteConversation(c.id); onDeleted(c.id); } }}>×</button>
      </li>`)}
    </ul>
    ${!found.length ? html`<p class="muted">${query ? "No conversation matches." : "No conversation yet."}</p>` : null}
    <div class="row">
      <button type="button" class="small" onClick=${() => download("conversations.json", exportConversations())}>Export</button>
      <button type="button" class="small" onClick=${() => file.current.click()}>Import</button>
      <input ref=${file} type="file" accept="application/json,.json" hidden aria-label="Import conversations" onChange=${onImport} />
    </div>
    ${status ? html`<p class="muted" role="status">${status}</p>` : null}
  </aside>`;
}
