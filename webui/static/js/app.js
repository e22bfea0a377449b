// The shell: a header with the nav, the error banner, the API-key prompt (shown when a request got
// 401) and the current page, loaded by the router. A page module's default export is its component.
import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { keyRequest } from "./api.js";
import { ROUTES, route, href } from "./router.js";
import { ErrorBanner, ErrorMessage } from "./ui/errors.js";
import { KeyForm } from "./ui/key.js";
import { Dialog } from "./ui/widgets.js";

const FIRST_PAGE_MARK = "appliance:first-page";
const loaded = new Map(); // route id -> page module, so a page loads once

function usePage(id) {
  const [state, setState] = useState(() => ({ id, module: loaded.get(id) || null, error: null }));
  useEffect(() => {
    const entry = ROUTES.find((r) => r.id === id);
    if (!entry) { setState({ id, module: null, error: new Error(`There is no page "${id}".`) }); return; }
    if (loaded.has(id)) { setState({ id, module: loaded.get(id), error: null }); return; }
    let live = true;
    setState({ id, module: null, error: null });
    entry.load().then(
      (module) => { loaded.set(id, module); if (live) setState({ id, module, error: null }); },
      (error) => { if (live) setState({ id, module: null, error }); },
    );
    return () => { live = false; };
  }, [id]);
  return state.id === id ? state : { id, module: null, error: null };
}

function Nav({ current }) {
  return html`<nav class="nav" aria-label="Pages">
    <ul>
      ${ROUTES.map((r) => html`<li key=${r.id}>
        <a href=${href(r.id)} aria-current=${r.id === current ? "page" : undefined}>${r.label}</a>
      </li>`)}
    </ul>
  </nav>`;
}

function KeyPrompt() {
  const message = keyRequest.value;
  if (message === null) return null;
  return html`<${Dialog} title="API key needed" onClose=${() => { keyRequest.value = null; }}>
    <p>The appliance answered: <strong>${message}</strong></p>
    <p>Enter an API key it accepts. It is kept in this browser and sent with every request.</p>
    <${KeyForm} idPrefix="prompt" />
  </${Dialog}>`;
}

export function App() {
  const { id, path } = route.value;
  const page = usePage(id);
  const entry = ROUTES.find((r) => r.id === id);
  useEffect(() => { document.title = entry ? `${entry.label} · The appliance` : "The appliance"; }, [id]);
  const Page = page.module && page.module.default;
  useEffect(() => { // for measurements: when the first page is on screen
    if (Page && !performance.getEntriesByName(FIRST_PAGE_MARK).length) performance.mark(FIRST_PAGE_MARK);
  }, [Page]);
  return html`<div class="shell">
    <a class="skip-link" href="#main">Skip to content</a>
    <header class="top">
      <a class="brand" href=${href("chat")}>The appliance</a>
      <${Nav} current=${id} />
    </header>
    <${ErrorBanner} />
    <main id="main" class=${`page page-${id}`} tabindex="-1">
      ${page.error ? html`<${ErrorMessage} error=${page.error} context="Could not open this page" />`
        : Page ? html`<${Page} path=${path} key=${id} />`
        : html`<p class="muted" role="status">Loading…</p>`}
    </main>
    <${KeyPrompt} />
  </div>`;
}
