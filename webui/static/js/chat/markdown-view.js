// Streaming markdown that stays smooth on long answers: text arrives in pieces, the DOM is updated
// at most once per animation frame, and only the unfinished last block is re-parsed and replaced.
// A block is finished once another block has started after it; finished blocks are rendered once,
// kept, and get their decorations then (code highlighting and copy buttons, citation buttons).
// A frame does a bounded amount of work: a burst of text (or a long saved answer) is rendered over
// several frames. The root's data-state says "rendering" until it has caught up with the text.
import { html } from "htm/preact";
import { useEffect, useRef } from "preact/hooks";
import { addCodeTools, highlightIn, lexMarkdown, linkCitations, renderTokens } from "../ui/markdown.js";

const BUDGET_MS = 6; // of work a frame: the rest of a burst waits for the next frame
const WINDOW = 2000; // characters lexed a frame (lexing is the costly part), cut at a blank line

/**
 * marked's tokens for the start of `tail`: at most about WINDOW characters, cut at a blank line,
 * widened until it holds two blocks. `truncated` says the window stopped before the end, so its
 * last block may continue past the cut and is not finished.
 */
function lexWindow(tail) {
  let size = WINDOW;
  for (;;) {
    const cut = size >= tail.length ? -1 : tail.indexOf("\n\n", size);
    const window = cut < 0 ? tail : tail.slice(0, cut + 2);
    const tokens = lexMarkdown(window);
    const truncated = window.length < tail.length;
    if (!truncated || tokens.filter((t) => t.type !== "space").length > 1) return { tokens, truncated };
    size *= 2;
  }
}

export class MarkdownView {
  constructor(root) {
    this.root = root;
    this.text = "";
    this.stable = 0; // text[0:stable] is rendered into finished blocks
    this.rendered = ""; // that text, to tell a continuation from a new text
    this.final = false; // the text is complete: every block is finished
    this.frame = 0;
    this.citations = 0; // how many sources [n] may name
    this.finished = document.createElement("div");
    this.live = document.createElement("div");
    this.live.className = "md-live";
    root.replaceChildren(this.finished, this.live);
    root.dataset.state = "empty";
  }

  /** Show `text` (usually the previous text plus a piece) at the next frame. */
  set(text) {
    this.text = text;
    this.final = false;
    this.schedule();
  }

  /** The text is complete: render every block as finished (over as many frames as it takes). */
  finish(text = this.text) {
    this.text = text;
    this.final = true;
    this.schedule();
  }

  schedule() {
    if (this.root.dataset.state !== "rendering") this.root.dataset.state = "rendering";
    if (!this.frame) this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  reset() {
    this.stable = 0;
    this.rendered = "";
    this.finished.replaceChildren();
    this.live.replaceChildren();
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
  }

  render() {
    const deadline = performance.now() + BUDGET_MS;
    if (this.text.includes("\r")) this.text = this.text.replace(/\r\n?/g, "\n");
    if (this.rendered !== this.text.slice(0, this.stable)) this.reset(); // not a continuation: start over
    const tail = this.text.slice(this.stable);
    const { tokens, truncated } = lexWindow(tail);
    let open = tokens.length - 1;
    while (open >= 0 && tokens[open].type === "space") open -= 1;
    let finishable = this.final && !truncated ? tokens.length : Math.max(open, 0);
    // Token sources always concatenate back to the text; if they ever do not, keep it all live.
    if (!tail.startsWith(tokens.slice(0, finishable).map((t) => t.raw).join(""))) finishable = 0;
    let done = 0;
    let raw = "";
    while (done < finishable && (done === 0 || performance.now() < deadline)) {
      const token = tokens[done];
      raw += token.raw;
      done += 1;
      if (token.type === "space") continue;
      const block = document.createElement("div");
      block.className = "md-block";
      block.innerHTML = renderTokens([token]); // sanitized by DOMPurify
      this.decorate(block);
      this.finished.appendChild(block);
    }
    this.stable += raw.length;
    this.rendered += raw;
    if (done < finishable || truncated) { // behind a burst: catch up next frame, the open block after that
      this.live.replaceChildren();
      this.schedule();
      return;
    }
    const rest = tokens.slice(done).filter((t) => t.type !== "space");
    if (rest.length) {
      this.live.innerHTML = renderTokens(rest); // sanitized by DOMPurify
      linkCitations(this.live, this.citations);
    } else {
      this.live.replaceChildren();
    }
    this.root.dataset.state = this.final ? "done" : "streaming";
  }

  decorate(block) {
    linkCitations(block, this.citations);
    if (block.querySelector("pre")) {
      addCodeTools(block);
      highlightIn(block);
    }
  }
}

/**
 * Where a streamed answer's text goes: the request loop push()es pieces, the <Markdown> showing the
 * message attaches its view. Holds the text so a view attached late catches up.
 */
export class StreamSink {
  constructor() {
    this.text = "";
    this.view = null;
    this.citations = 0;
    this.pieces = 0;
  }

  attach(view) {
    this.view = view;
    view.citations = this.citations;
    if (this.text) view.set(this.text);
  }

  setCitations(count) {
    this.citations = count;
    if (this.view) this.view.citations = count;
  }

  push(piece) {
    this.text += piece;
    this.pieces += 1;
    if (this.view) this.view.set(this.text);
  }
}

/**
 * A message's markdown. With `sink` it follows a stream; otherwise it renders `text` once.
 * A click on a [n] button calls onCite(n).
 */
export function Markdown({ text, sink, citations = 0, onCite }) {
  const ref = useRef(null);
  const view = useRef(null);
  useEffect(() => {
    view.current = new MarkdownView(ref.current);
    return () => view.current.destroy();
  }, []);
  useEffect(() => {
    const v = view.current;
    if (sink) {
      sink.attach(v);
    } else {
      if (v.citations !== citations) v.reset();
      v.citations = citations;
      v.finish(text || "");
    }
  }, [text, sink, citations]);
  const onClick = (event) => {
    const button = event.target.closest && event.target.closest("button.cite");
    if (button && onCite) onCite(Number(button.dataset.cite));
  };
  return html`<div class="markdown" ref=${ref} onClick=${onClick}></div>`;
}
