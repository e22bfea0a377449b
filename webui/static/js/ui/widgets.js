// Small shared pieces every page uses: data loading with loading/error state, copy to clipboard,
// a dialog panel, page headers and number/size/date formatting.
import { html } from "htm/preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { apiKey } from "../api.js";
import { ErrorMessage, showError } from "./errors.js";

/**
 * Load data with `loader(signal)` (an async function taking an AbortSignal) on mount, whenever
 * `deps` change and when the API key changes. Returns {data, error, loading, reload}.
 */
export function useResource(loader, deps = []) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const [tick, setTick] = useState(0);
  const key = apiKey.value;
  useEffect(() => {
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    loader(controller.signal).then(
      (data) => { if (!controller.signal.aborted) setState({ data, error: null, loading: false }); },
      (error) => { if (!controller.signal.aborted) setState({ data: undefined, error, loading: false }); },
    );
    return () => controller.abort();
  }, [...deps, key, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** The loading/error/content switch for a resource: children(data) once loaded. */
export function Loaded({ resource, context, children }) {
  if (resource.error) return html`<${ErrorMessage} error=${resource.error} context=${context} />`;
  if (resource.data === undefined) return html`<p class="muted" role="status">Loading…</p>`;
  return children(resource.data);
}

/** Copy text to the clipboard (with a fallback where the Clipboard API is not allowed). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return;
  } catch { /* fall back below */ }
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("The browser refused to copy to the clipboard");
}

/** A button that copies `text()` (or `text`) and says "Copied" for a moment. */
export function CopyButton({ text, label = "Copy", className = "" }) {
  const [done, setDone] = useState(false);
  const onClick = async () => {
    try {
      await copyText(typeof text === "function" ? text() : text);
      setDone(true);
      setTimeout(() => setDone(false), 1200);
    } catch (err) {
      showError(err, "Could not copy");
    }
  };
  return html`<button type="button" class=${`small ${className}`} onClick=${onClick}>${done ? "Copied" : label}</button>`;
}

/**
 * A panel over the page (role="dialog"), closed by its button, Esc or a click outside. Focus moves
 * into it when it opens and back where it was when it closes. `drawer`: a side panel on the right
 * that leaves the page visible (e.g. a source beside the answer citing it).
 */
export function Dialog({ title, onClose, children, className = "", drawer = false }) {
  const ref = useRef(null);
  useEffect(() => {
    const before = document.activeElement;
    ref.current && ref.current.focus();
    const onKey = (e) => { if (e.key === "Escape") { e.stopPropagation(); onClose(); } };
    document.addEventListener("keydown", onKey, true);
    return () => {
      document.removeEventListener("keydown", onKey, true);
      if (before && before.focus) before.focus();
    };
  }, []);
  const titleId = useRef(`dialog-${Math.random().toString(36).slice(2)}`).current;
  return html`<div class=${`dialog-backdrop${drawer ? " drawer" : ""}`} onClick=${(e) => { if (e.target === e.currentTarget) onClose(); }}>
    <div class=${`dialog ${className}`} role="dialog" aria-modal="true" aria-labelledby=${titleId} tabindex="-1" ref=${ref}>
      <div class="dialog-head">
        <h2 id=${titleId}>${title}</h2>
        <button type="button" class="icon-button" aria-label="Close" onClick=${onClose}>×</button>
      </div>
      <div class="dialog-body">${children}</div>
    </div>
  </div>`;
}

/** A page's heading row: the title and optional actions on the right. */
export function PageHeader({ title, children }) {
  return html`<div class="page-header"><h1>${title}</h1><div class="actions">${children}</div></div>`;
}

export function formatBytes(bytes) {
  if (bytes == null || Number.isNaN(bytes)) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = Number(bytes);
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit === 0 || value >= 100 ? 0 : 1)} ${units[unit]}`;
}

/** 12345.678 -> "12,345.68" (digits after the point); plain string work, no costly Intl set-up. */
export function formatNumber(value, digits = 0) {
  if (value == null || Number.isNaN(Number(value))) return "–";
  const [whole, fraction] = Math.abs(Number(value)).toFixed(digits).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${Number(value) < 0 ? "-" : ""}${grouped}${fraction ? `.${fraction}` : ""}`;
}

/** A date from Unix seconds (as the API sends them). */
export function formatDate(seconds) {
  if (!seconds) return "–";
  return new Date(seconds * 1000).toLocaleString();
}
