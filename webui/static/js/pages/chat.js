// Chat: conversations kept in this browser, answers streamed as markdown, stop (button or Esc),
// regenerate, edit a question, copy, per-conversation model and sampling settings, and answers from
// documents (vector stores) with numbered citations that open their source.
import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { showError } from "../ui/errors.js";
import { warmUp } from "../ui/markdown.js";
import { CitationPanel } from "../chat/citation.js";
import { Message } from "../chat/message.js";
import { StreamSink } from "../chat/markdown-view.js";
import { ModelPicker, SamplingOptions, StorePicker, useChatModels } from "../chat/options.js";
import { requestBody, streamAnswer } from "../chat/run.js";
import { Conversations } from "../chat/sidebar.js";
import { loadConversation, newConversation, newId, rememberOptions, saveConversation } from "../chat/store.js";

function useFollowBottom(ref, active) {
  useEffect(() => {
    if (!active || !ref.current) return undefined;
    const log = ref.current;
    let pinned = true;
    const onScroll = () => { pinned = log.scrollHeight - log.scrollTop - log.clientHeight < 80; };
    log.addEventListener("scroll", onScroll, { passive: true });
    let frame = requestAnimationFrame(function follow() {
      if (pinned) log.scrollTop = log.scrollHeight;
      frame = requestAnimationFrame(follow);
    });
    return () => { cancelAnimationFrame(frame); log.removeEventListener("scroll", onScroll); };
  }, [active]);
}

function Composer({ streaming, disabled, onSend, onStop }) {
  const [text, setText] = useState("");
  const send = () => {
    if (!text.trim() || streaming || disabled) return;
    if (onSend(text)) setText("");
  };
  const onKeyDown = (event) => {
    // Enter sends; Shift+Enter is a new line; an input method composing owns its Enter.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      send();
    }
  };
  return html`<form class="composer" onSubmit=${(e) => { e.preventDefault(); send(); }}>
    <label class="visually-hidden" for="chat-input">Message</label>
    <textarea id="chat-input" rows="2" placeholder="Ask something (Enter sends, Shift+Enter for a new line)"
      value=${text} onInput=${(e) => setText(e.currentTarget.value)} onKeyDown=${onKeyDown}></textarea>
    ${streaming
      ? html`<button type="button" class="danger" onClick=${onStop} aria-keyshortcuts="Escape">Stop</button>`
      : html`<button type="submit" class="primary" disabled=${disabled || !text.trim()}>Send</button>`}
  </form>`;
}

export default function ChatPage({ path }) {
  const [conv, setConv] = useState(() => (path[0] && loadConversation(path[0])) || newConversation());
  const [streaming, setStreaming] = useState(null); // {id, controller, sink}
  const [showOptions, setShowOptions] = useState(false);
  const [showSide, setShowSide] = useState(false);
  const [citation, setCitation] = useState(null); // {message, index}
  const [listVersion, setListVersion] = useState(0);
  const models = useChatModels();
  const log = useRef(null);
  useFollowBottom(log, !!streaming);

  useEffect(() => { // a conversation link (#/chat/<id>) opens it
    if (path[0] && path[0] !== conv.id && !streaming) {
      const found = loadConversation(path[0]);
      if (found) setConv(found); else showError(`There is no conversation ${path[0]} in this browser`);
    }
  }, [path[0]]);

  useEffect(() => { // the first chat model when none is chosen yet
    const ids = models.data || [];
    if (ids.length) setConv((c) => (c.options.model ? c : { ...c, options: { ...c.options, model: ids[0] } }));
  }, [models.data]);

  useEffect(() => { // kept in the browser whenever it settles
    if (streaming) return;
    try {
      saveConversation(conv);
      setListVersion((v) => v + 1);
    } catch (err) {
      showError(err, "Could not keep the conversation");
    }
  }, [conv, streaming]);

  useEffect(() => { // Esc stops a stream
    if (!streaming) return undefined;
    const onKey = (event) => { if (event.key === "Escape") streaming.controller.abort(); };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [streaming]);

  const live = useRef(null); // the stream now, for the unmount below
  live.current = streaming;
  useEffect(() => {
    warmUp();
    return () => { if (live.current) live.current.controller.abort(); }; // leaving the page stops the stream
  }, []);

  const setOptions = (options) => {
    setConv((c) => ({ ...c, options }));
    rememberOptions(options);
  };

  const patchMessage = (id, patch) => setConv((c) => ({
    ...c, messages: c.messages.map((m) => (m.id === id ? { ...m, ...patch } : m)),
  }));

  /** Why a question cannot be sent now (shown), or null. */
  const refusal = () => {
    const { options } = conv;
    if (!options.model) return "Pick a model first (none is offered for chat)";
    if (options.documents && !options.vector_store_ids.length) {
      return "Pick at least one vector store to answer from, or turn documents off";
    }
    return null;
  };

  const ask = async (history) => {
    const { options } = conv;
    const refused = refusal();
    if (refused) { showError(refused); return false; }
    const assistant = { id: newId("m"), role: "assistant", content: "", model: options.model, pending: true };
    const sink = new StreamSink();
    const controller = new AbortController();
    setConv((c) => ({ ...c, messages: [...history, assistant] }));
    setStreaming({ id: assistant.id, controller, sink });
    const result = await streamAnswer(requestBody(history, options), sink, {
      signal: controller.signal,
      onCitations: (citations, retrieval) => patchMessage(assistant.id, { citations, retrieval }),
    });
    patchMessage(assistant.id, { ...result, pending: false });
    setStreaming(null);
    return true;
  };

  const send = (text) => {
    const refused = refusal();
    if (refused) { showError(refused); return false; } // the question stays in the box
    ask([...conv.messages, { id: newId("m"), role: "user", content: text }]);
    return true;
  };
  const regenerate = (index) => ask(conv.messages.slice(0, index));
  const edit = (index, text) => ask([...conv.messages.slice(0, index), { ...conv.messages[index], content: text }]);
  const stop = () => streaming && streaming.controller.abort();
  const open = (next) => {
    if (streaming) streaming.controller.abort();
    setConv(next);
    setShowSide(false);
    window.history.replaceState(null, "", `#/chat/${encodeURIComponent(next.id)}`);
  };

  const lastAssistant = conv.messages.map((m) => m.role).lastIndexOf("assistant");
  const citedMessage = citation && conv.messages.find((m) => m.id === citation.message);
  const cited = citedMessage && (citedMessage.citations || []).find((c) => c.index === citation.index);

  return html`<div class=${`chat${cited ? " with-drawer" : ""}`}>
    <${Conversations} current=${conv.id} version=${listVersion} open=${showSide}
      onOpen=${(id) => { const found = loadConversation(id); if (found) open(found); }}
      onNew=${() => open(newConversation())}
      onDeleted=${(id) => { if (id === conv.id) open(newConversation()); setListVersion((v) => v + 1); }}
      onImported=${() => setListVersion((v) => v + 1)} />
    <section class="chat-main" aria-labelledby="chat-heading">
      <h1 id="chat-heading" class="visually-hidden">Chat</h1>
      <div class="chat-bar">
        <button type="button" class="side-toggle small" aria-expanded=${showSide} onClick=${() => setShowSide(!showSide)}>Conversations</button>
        <${ModelPicker} models=${models} value=${conv.options.model} onChange=${(model) => setOptions({ ...conv.options, model })} />
        <button type="button" class="small" aria-expanded=${showOptions} aria-controls="chat-options"
          onClick=${() => setShowOptions(!showOptions)}>Settings</button>
        <label class="inline">
          <input type="checkbox" checked=${conv.options.documents}
            onChange=${(e) => setOptions({ ...conv.options, documents: e.currentTarget.checked })} />
          Documents
        </label>
      </div>
      ${showOptions ? html`<${SamplingOptions} options=${conv.options} onChange=${setOptions} />` : null}
      ${conv.options.documents ? html`<div class="chat-options"><div class="wide">
        <${StorePicker} options=${conv.options} onChange=${setOptions} />
      </div></div>` : null}
      <div class="chat-log" role="log" aria-label="Conversation" ref=${log} tabindex="0">
        ${conv.messages.length ? conv.messages.map((m, i) => html`<${Message} key=${m.id} message=${m}
            sink=${streaming && streaming.id === m.id ? streaming.sink : null} busy=${!!streaming}
            canRegenerate=${i === lastAssistant} onRegenerate=${() => regenerate(i)}
            onEdit=${(text) => edit(i, text)} onCite=${(n) => setCitation({ message: m.id, index: n })} />`)
          : html`<p class="chat-empty">Ask a question to start. Turn on Documents to answer from your files.</p>`}
      </div>
      <${Composer} streaming=${!!streaming} disabled=${!conv.options.model} onSend=${send} onStop=${stop} />
    </section>
    ${cited ? html`<${CitationPanel} citation=${cited} onClose=${() => setCitation(null)} />` : null}
  </div>`;
}
