// Markdown to safe HTML (marked, then DOMPurify: model output is never trusted), code highlighting
// that loads highlight.js and each language only when a finished code block needs it, and the
// decorations of a finished block: a copy button on code and [n] citation markers as buttons.
import { marked } from "marked";
import DOMPurify from "dompurify";
import { copyText } from "./widgets.js";
import { showError } from "./errors.js";

marked.setOptions({ gfm: true, breaks: false });

// Links from model output open in a new tab and tell the target nothing.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.getAttribute("href") && !node.getAttribute("href").startsWith("#")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

/** Sanitized HTML for markdown `text`. */
export function renderMarkdown(text) {
  return DOMPurify.sanitize(marked.parse(text || ""));
}

/** Sanitized HTML for some of marked's block tokens. */
export function renderTokens(tokens) {
  return DOMPurify.sanitize(marked.parser(tokens));
}

/** marked's block tokens of `text`. */
export function lexMarkdown(text) {
  return marked.lexer(text);
}

const LANGUAGES = {
  bash: "bash", sh: "bash", zsh: "bash", shell: "shell", console: "shell",
  c: "c", h: "c", cpp: "cpp", "c++": "cpp", cc: "cpp", hpp: "cpp",
  css: "css", diff: "diff", patch: "diff", go: "go", golang: "go", java: "java",
  javascript: "javascript", js: "javascript", jsx: "javascript", mjs: "javascript",
  json: "json", jsonc: "json", markdown: "markdown", md: "markdown",
  plaintext: "plaintext", text: "plaintext", txt: "plaintext",
  python: "python", py: "python", rust: "rust", rs: "rust", sql: "sql",
  typescript: "typescript", ts: "typescript", tsx: "typescript",
  xml: "xml", html: "xml", svg: "xml", yaml: "yaml", yml: "yaml",
};
let core = null;
const grammars = new Map();

function loadCore() {
  core = core || import("highlight.js/core").then((m) => m.default);
  return core;
}

function loadGrammar(hljs, name) {
  if (!grammars.has(name)) {
    grammars.set(name, import(`highlight.js/languages/${name}.min.js`).then((m) => {
      hljs.registerLanguage(name, m.default);
    }));
  }
  return grammars.get(name);
}

const WARM_LANGUAGES = ["python", "javascript", "bash", "json"]; // the ones answers use most
const WARM_UP = "# h\n\nText with **bold**, _em_, `code`, a [link](#x) and [1].\n\n- a\n- b\n\n1. c\n\n"
  + "> quote\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```python\nx = 1\n```\n";

/**
 * While the browser is idle, do the first-time work a first answer would otherwise pay in the
 * middle of its stream: marked's and DOMPurify's first run (regex compilation, JIT warm-up),
 * loading highlight.js's core and compiling the most common languages' grammars.
 */
export function warmUp() {
  const idle = window.requestIdleCallback || ((fn) => setTimeout(fn, 200));
  idle(() => {
    for (let i = 0; i < 3; i += 1) renderTokens(lexMarkdown(WARM_UP));
    loadCore().then(async (hljs) => {
      for (const name of WARM_LANGUAGES) { // a grammar compiles on first use: a long task mid-stream
        await loadGrammar(hljs, name);
        hljs.highlight("x = 1", { language: name });
        await nextFrame();
      }
    }).catch(() => { /* reported when a block needs it */ });
  });
}

/** The highlight.js language of a fenced block (`language-py` -> "python"), or null. */
export function languageOf(code) {
  const match = /(?:^|\s)language-([\w+-]+)/.exec(code.className || "");
  return match ? LANGUAGES[match[1].toLowerCase()] || null : null;
}

const queue = []; // code elements waiting to be highlighted, oldest first
let pumping = false;
const HIGHLIGHT_BUDGET_MS = 6; // of highlighting a frame: many finished blocks never make a long task

function nextFrame() {
  return new Promise((resolve) => requestAnimationFrame(() => resolve()));
}

/** Highlight every `pre code` with a known language inside `root`, a few each frame (a failure is shown). */
export function highlightIn(root) {
  for (const code of root.querySelectorAll("pre code")) {
    if (languageOf(code) && !code.dataset.highlighted) queue.push(code);
  }
  if (queue.length && !pumping) pump();
}

async function pump() {
  pumping = true;
  try {
    const hljs = await loadCore();
    while (queue.length) {
      const deadline = performance.now() + HIGHLIGHT_BUDGET_MS;
      while (queue.length && performance.now() < deadline) {
        const code = queue.shift();
        if (!code.isConnected || code.dataset.highlighted) continue;
        const name = languageOf(code);
        await loadGrammar(hljs, name);
        const result = hljs.highlight(code.textContent, { language: name, ignoreIllegals: true });
        code.innerHTML = result.value; // highlight.js escapes the code it wraps
        code.classList.add("hljs");
        code.dataset.highlighted = "yes";
      }
      if (queue.length) await nextFrame();
    }
  } catch (err) {
    queue.length = 0;
    showError(err, "Could not highlight code");
  } finally {
    pumping = false;
  }
}

/** Put a label and a "Copy code" button above each code block in `root`. */
export function addCodeTools(root) {
  for (const pre of root.querySelectorAll("pre")) {
    if (pre.previousElementSibling && pre.previousElementSibling.classList.contains("code-tools")) continue;
    const code = pre.querySelector("code");
    const bar = document.createElement("div");
    bar.className = "code-tools";
    const label = document.createElement("span");
    label.textContent = (code && languageOf(code)) || "code";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "small";
    button.textContent = "Copy code";
    button.addEventListener("click", () => {
      copyText((code || pre).textContent).then(
        () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy code"; }, 1200); },
        (err) => showError(err, "Could not copy"),
      );
    });
    bar.append(label, button);
    pre.before(bar);
  }
}

const MARKER = /\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]/g;
const HAS_MARKER = /\[\d{1,3}(?:\s*,\s*\d{1,3})*\]/;

/**
 * Turn `[n]` and `[n, m]` in the text of `root` (not in code or links) into buttons with
 * data-cite="n", for n in 1..count. The buttons are plain DOM; a click is handled by delegation.
 */
export function linkCitations(root, count) {
  if (!count) return;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
    acceptNode: (node) => (node.parentElement.closest("code, pre, a, button") ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT),
  });
  const nodes = [];
  while (walker.nextNode()) if (HAS_MARKER.test(walker.currentNode.data)) nodes.push(walker.currentNode);
  for (const node of nodes) {
    const parts = [];
    let last = 0;
    node.data.replace(MARKER, (match, numbers, offset) => {
      const valid = numbers.split(",").map((n) => Number(n.trim())).filter((n) => n >= 1 && n <= count);
      if (!valid.length) return match;
      parts.push(document.createTextNode(node.data.slice(last, offset)));
      for (const n of valid) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "cite";
        button.dataset.cite = String(n);
        button.setAttribute("aria-label", `Source ${n}`);
        button.textContent = `[${n}]`;
        parts.push(button);
      }
      last = offset + match.length;
      return match;
    });
    if (!parts.length) continue;
    parts.push(document.createTextNode(node.data.slice(last)));
    node.replaceWith(...parts);
  }
}
